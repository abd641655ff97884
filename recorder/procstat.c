/*
 * procstat.c: one second of the process as the kernel sees it (/proc/self/stat, status and
 * fd), for the timeline. Writer thread only; a few reads of small files per second.
 *
 * Must never fail the caller: a field that cannot be read is -1.
 */
#include "procstat.h"

#include "threads.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ssize_t read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = 0;
    return n;
}

static int64_t status_kb(const char *status, const char *key)
{
    const char *p = strstr(status, key);
    return p ? strtoll(p + strlen(key), NULL, 10) : -1;
}

static int64_t count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int64_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

void cs_procstat_read(cs_timeline_row *r)
{
    char buf[4096];
    long tick = sysconf(_SC_CLK_TCK), page_kb = sysconf(_SC_PAGESIZE) / 1024;
    memset(r, 0xff, sizeof *r); /* every field -1 */
    if (read_file("/proc/self/stat", buf, sizeof buf) > 0) {
        /* Fields after the command name, which may hold spaces and parentheses. */
        const char *p = strrchr(buf, ')');
        long long v[50];
        int n = 0;
        for (p = p ? p + 2 : buf; *p && n < 50; n++) {
            v[n] = strtoll(p, (char **)&p, 10);
            if (*p == ' ')
                p++;
            else if (*p && !(*p >= '0' && *p <= '9') && *p != '-')
                p++; /* the state letter */
        }
        /* v[0] is the state (parsed as 0): fields are numbered from 3 in proc(5). */
        if (n > 22 && tick > 0) {
            r->minor_faults = v[7];
            r->major_faults = v[9];
            r->cpu_user_ms = v[11] * 1000 / tick;
            r->cpu_system_ms = v[12] * 1000 / tick;
            r->threads = v[17];
            r->rss_kb = v[21] * page_kb;
        }
    }
    if (read_file("/proc/self/status", buf, sizeof buf) > 0) {
        r->peak_rss_kb = status_kb(buf, "VmHWM:");
        if (r->rss_kb < 0)
            r->rss_kb = status_kb(buf, "VmRSS:");
        r->voluntary_cs = status_kb(buf, "\nvoluntary_ctxt_switches:");
        r->involuntary_cs = status_kb(buf, "nonvoluntary_ctxt_switches:");
    }
    r->fds = count_fds();
    uint64_t created, exited;
    cs_threads_counts(&created, &exited);
    r->threads_created = (int64_t)created;
    r->threads_exited = (int64_t)exited;
}
