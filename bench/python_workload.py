"""python_workload.py: a fixed amount of CPU-bound pure-Python work, for the recorder's
overhead on Python programs (bench/python.sh).

The work goes down a chain of Python calls 20 to 35 deep (like a web app's request handling)
to a loop in one of three leaf functions, in a fixed order, so every run executes the same
bytecode. It prints the process CPU time (all threads: the recorder's included) of the work
after a warm-up fifth, as "steady_cpu_s X", and a checksum. Must never depend on the machine's
speed for what it computes.
"""
import sys
import time


def leaf_sum(n):
    s = 0
    for i in range(n):
        s += i * i
    return s


def leaf_str(n):
    return len("".join(str(i) for i in range(n // 4)))


def leaf_dict(n):
    d = {}
    for i in range(n // 2):
        d[i % 97] = d.get(i % 97, 0) + i
    return sum(d.values())


LEAVES = (leaf_sum, leaf_str, leaf_dict)


def descend(depth, k, n):
    if depth == 0:
        return LEAVES[k % 3](n)
    return descend(depth - 1, k, n) + 1


def main():
    units = int(sys.argv[1]) if len(sys.argv) > 1 else 60000
    check = 0
    warm = units // 5
    t0 = None
    for u in range(units):
        if u == warm:
            t0 = time.process_time()
        check = (check * 31 + descend(20 + u % 16, u, 2000)) % 1000003
    print("steady_cpu_s %.6f" % (time.process_time() - t0))
    print("checksum %d" % check)


main()
