// loader_stress.cc: threads that dlopen/dlclose a library and throw C++ exceptions in a loop,
// for argv[2] seconds; argv[1] is the library to load. Sampled at a high rate, this is where
// an unwinder that takes the loader lock from a signal handler deadlocks. Prints the number
// of iterations and exits 0.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <stdexcept>
#include <thread>
#include <vector>

static std::atomic<long> iterations{0};

__attribute__((noinline)) static int thrower(int depth)
{
    if (depth == 0)
        throw std::runtime_error("deep");
    return thrower(depth - 1) + 1;
}

static void work(const char *lib, double secs)
{
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(secs);
    while (std::chrono::steady_clock::now() < end) {
        void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            std::fprintf(stderr, "dlopen %s: %s\n", lib, dlerror());
            std::exit(2);
        }
        try {
            thrower(20);
        } catch (const std::exception &) {
        }
        dlclose(h);
        iterations++;
    }
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    double secs = std::atof(argv[2]);
    std::vector<std::thread> ts;
    for (int i = 0; i < 4; i++)
        ts.emplace_back(work, argv[1], secs);
    for (auto &t : ts)
        t.join();
    std::printf("iterations %ld\n", iterations.load());
    return 0;
}
