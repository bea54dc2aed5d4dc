/*
 * undo_shim.c: simulate a power cut for the files under one directory (LD_PRELOAD).
 *
 * Before every write that changes a file under $POWERLOSS_DIR (write, pwrite, pwrite64,
 * writev, pwritev, pwritev64, pwritev2, ftruncate, ftruncate64), the bytes about to be
 * overwritten and the file's size are appended to an UNDO journal for that file in
 * $POWERLOSS_JOURNAL. fsync / fdatasync / syncfs / sync make the file's current state
 * durable: its journal is emptied. After the process is killed with -9, applying every
 * journal's records in reverse order (tests/powerloss/__init__.py: `cut_power`) rolls each
 * file back to its state at its last successful sync: every byte not synced is lost.
 *
 * A region saved since the last sync is not saved again (rolling back the earliest record
 * that covers a byte restores it), so the journal holds each byte at most once per sync.
 *
 * Journal file `<pid>.<n>.undo`: "PLUNDO1\n", u32 path length, the path; then records
 *   u32 'UNDO' | u32 kind (1 write, 2 truncate) | u64 offset | u64 saved length |
 *   u64 old file size | saved bytes | u32 'DONE'
 * A record is complete before the write it protects starts, so a kill -9 can only tear the
 * last record of a write that never happened; the reader drops such a torn tail.
 *
 * Counters for the test (so a test can never pass without the shim seeing anything) are kept
 * in the shared mapping `<journal>/stats.<pid>`, which survives the kill -9 like any page cache.
 *
 * $POWERLOSS_KILL_AFTER_WRITES=N: the process kills itself with SIGKILL right after the N-th
 * tracked write returned, i.e. in the middle of whatever SQLite was doing (a timed kill from
 * outside mostly lands between transactions).
 *
 * Not seen (documented limits): writes through mmap (SQLite's -shm index, which the test
 * deletes after the cut: SQLite rebuilds it), sendfile / splice / copy_file_range, fallocate;
 * file creation, rename and unlink (directory entries are treated as always durable);
 * several processes writing one file (each keeps its own journal). O_SYNC / O_DSYNC writes are
 * treated like buffered ones (stricter than reality). Any internal failure aborts the
 * process: a silently missing undo record would make the simulated power cut milder.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define REC_MAGIC 0x4F444E55u  /* "UNDO" little-endian */
#define REC_TRAILER 0x454E4F44u /* "DONE" little-endian */
#define JOURNAL_MAGIC "PLUNDO1\n"
#define KIND_WRITE 1u
#define KIND_TRUNCATE 2u
#define MAX_FILES 64
#define MAX_CACHED_FDS 4096

struct stats {
    uint64_t tracked_writes;   /* write-like calls on tracked files */
    uint64_t tracked_bytes;    /* bytes those calls asked to write */
    uint64_t undo_records;     /* records appended to journals */
    uint64_t undo_bytes;       /* old bytes saved in them */
    uint64_t syncs;            /* fsync/fdatasync that emptied a tracked file's journal */
    uint64_t truncates;        /* ftruncate on tracked files */
    uint64_t files;            /* tracked files seen */
    uint64_t last_sync_ns;     /* CLOCK_MONOTONIC of the last such sync */
    uint64_t killed_ns;        /* CLOCK_MONOTONIC of the kill by $POWERLOSS_KILL_AFTER_WRITES, 0 if none */
};

struct interval {
    uint64_t start, end;
};

struct tracked_file {
    dev_t dev;
    ino_t ino;
    char path[PATH_MAX];
    int read_fd;          /* our own O_RDONLY descriptor, to read the old bytes */
    int journal_fd;
    uint64_t journal_header;
    uint64_t journal_end;
    struct interval *saved; /* regions saved since the last sync: sorted, disjoint, merged */
    size_t n_saved, cap_saved;
};

struct fd_entry {
    int known; /* 0 unknown, 1 not tracked, 2 tracked */
    dev_t dev;
    ino_t ino;
    int file;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char prefix[PATH_MAX];
static size_t prefix_len;
static char journal_dir[PATH_MAX];
static int active;
static struct stats *stats;
static struct tracked_file files[MAX_FILES];
static int n_files;
static struct fd_entry fd_cache[MAX_CACHED_FDS];
static unsigned journal_counter;
static uint64_t kill_after_writes;

static void die(const char *what) {
    char msg[512];
    int n = snprintf(msg, sizeof msg, "undo_shim: %s: %s\n", what, strerror(errno));
    if (n > 0)
        syscall(SYS_write, 2, msg, (size_t)n);
    abort();
}

/* -- the real functions, resolved past this library */

#define REAL(name) real_##name
#define RESOLVE(name)                                                                                   \
    do {                                                                                                \
        if (!REAL(name)) {                                                                              \
            *(void **)(&REAL(name)) = dlsym(RTLD_NEXT, #name);                                          \
            if (!REAL(name))                                                                            \
                die("dlsym " #name);                                                                    \
        }                                                                                               \
    } while (0)

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev2)(int, const struct iovec *, int, off_t, int);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_syncfs)(int);
static void (*real_sync)(void);
static int (*real_close)(int);

/* -- raw I/O on our own descriptors (never through the wrappers) */

static void write_all(int fd, const void *buf, size_t len, uint64_t off) {
    const char *p = buf;
    while (len) {
        ssize_t n = syscall(SYS_pwrite64, fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("journal write");
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
}

static void read_all(int fd, void *buf, size_t len, uint64_t off) {
    char *p = buf;
    while (len) {
        ssize_t n = syscall(SYS_pread64, fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("reading the bytes about to be overwritten");
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((constructor)) static void shim_init(void) {
    const char *dir = getenv("POWERLOSS_DIR");
    const char *journal = getenv("POWERLOSS_JOURNAL");
    if (!dir || !*dir || !journal || !*journal)
        return;
    if (!realpath(dir, prefix))
        die("realpath POWERLOSS_DIR");
    prefix_len = strlen(prefix);
    if (!realpath(journal, journal_dir))
        die("realpath POWERLOSS_JOURNAL");
    if (strncmp(journal_dir, prefix, prefix_len) == 0 &&
        (journal_dir[prefix_len] == '/' || journal_dir[prefix_len] == '\0')) {
        errno = EINVAL;
        die("POWERLOSS_JOURNAL must not be under POWERLOSS_DIR");
    }
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/stats.%d", journal_dir, (int)getpid());
    int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        die("open stats");
    if (syscall(SYS_ftruncate, fd, (off_t)sizeof(struct stats)) != 0)
        die("size stats");
    stats = mmap(NULL, sizeof(struct stats), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (stats == MAP_FAILED)
        die("mmap stats");
    syscall(SYS_close, fd);
    const char *kill_after = getenv("POWERLOSS_KILL_AFTER_WRITES");
    kill_after_writes = kill_after ? strtoull(kill_after, NULL, 10) : 0;
    active = 1;
}

/* -- which descriptors are tracked (the caller holds the lock) */

static int under_prefix(const char *path) {
    return strncmp(path, prefix, prefix_len) == 0 && (path[prefix_len] == '/' || prefix[prefix_len - 1] == '/');
}

static int file_for(int fd, const struct stat *st, const char *path) {
    for (int i = 0; i < n_files; i++)
        if (files[i].dev == st->st_dev && files[i].ino == st->st_ino)
            return i;
    if (n_files == MAX_FILES) {
        errno = ENOSPC;
        die("too many tracked files");
    }
    struct tracked_file *f = &files[n_files];
    memset(f, 0, sizeof *f);
    f->dev = st->st_dev;
    f->ino = st->st_ino;
    snprintf(f->path, sizeof f->path, "%s", path);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    f->read_fd = (int)syscall(SYS_openat, AT_FDCWD, proc, O_RDONLY | O_CLOEXEC);
    if (f->read_fd < 0)
        die("reopen tracked file for reading");
    char jpath[PATH_MAX + 64];
    snprintf(jpath, sizeof jpath, "%s/%d.%u.undo", journal_dir, (int)getpid(), journal_counter++);
    f->journal_fd = (int)syscall(SYS_openat, AT_FDCWD, jpath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (f->journal_fd < 0)
        die("create journal");
    uint32_t len = (uint32_t)strlen(f->path);
    char header[8 + 4 + PATH_MAX];
    memcpy(header, JOURNAL_MAGIC, 8);
    memcpy(header + 8, &len, 4);
    memcpy(header + 12, f->path, len);
    write_all(f->journal_fd, header, 12 + len, 0);
    f->journal_header = f->journal_end = 12 + len;
    stats->files++;
    return n_files++;
}

/* The tracked file behind `fd`, or -1. A cached answer is checked against the inode, so a
 * descriptor number reused behind our back (a close we did not see) is classified again. */
static int tracked(int fd) {
    if (!active || fd < 0)
        return -1;
    struct stat st;
    if (syscall(SYS_fstat, fd, &st) != 0 || !S_ISREG(st.st_mode))
        return -1;
    struct fd_entry *e = fd < MAX_CACHED_FDS ? &fd_cache[fd] : NULL;
    if (e && e->known && e->dev == st.st_dev && e->ino == st.st_ino)
        return e->known == 2 ? e->file : -1;
    char proc[64], path[PATH_MAX];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t n = syscall(SYS_readlink, proc, path, sizeof path - 1);
    if (n < 0)
        die("readlink /proc/self/fd");
    path[n] = '\0';
    int file = under_prefix(path) ? file_for(fd, &st, path) : -1;
    if (e) {
        e->known = file >= 0 ? 2 : 1;
        e->dev = st.st_dev;
        e->ino = st.st_ino;
        e->file = file;
    }
    return file;
}

/* -- the undo journal (the caller holds the lock) */

static int covered(const struct tracked_file *f, uint64_t start, uint64_t end) {
    for (size_t i = 0; i < f->n_saved; i++)
        if (f->saved[i].start <= start && end <= f->saved[i].end)
            return 1;
    return 0;
}

static int by_start(const void *a, const void *b) {
    const struct interval *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static void mark_saved(struct tracked_file *f, uint64_t start, uint64_t end) {
    if (f->n_saved == f->cap_saved) {
        f->cap_saved = f->cap_saved ? 2 * f->cap_saved : 16;
        f->saved = realloc(f->saved, f->cap_saved * sizeof *f->saved);
        if (!f->saved)
            die("realloc");
    }
    f->saved[f->n_saved++] = (struct interval){start, end};
    qsort(f->saved, f->n_saved, sizeof *f->saved, by_start);
    size_t out = 0;
    for (size_t i = 1; i < f->n_saved; i++) {
        if (f->saved[i].start <= f->saved[out].end) {
            if (f->saved[i].end > f->saved[out].end)
                f->saved[out].end = f->saved[i].end;
        } else {
            f->saved[++out] = f->saved[i];
        }
    }
    f->n_saved = out + 1;
}

/* Save what [start, end) holds now, and the file's size, unless already saved since the last sync. */
static void save_region(struct tracked_file *f, uint32_t kind, uint64_t start, uint64_t end) {
    int first_since_sync = f->journal_end == f->journal_header;
    if (!first_since_sync && (start == end || covered(f, start, end)))
        return; /* the earliest record since the sync already restores these bytes and the size */
    struct stat st;
    if (syscall(SYS_fstat, f->read_fd, &st) != 0)
        die("fstat tracked file");
    uint64_t size = (uint64_t)st.st_size;
    uint64_t saved = start < size ? (end < size ? end : size) - start : 0;
    size_t record_len = 4 + 4 + 8 + 8 + 8 + saved + 4;
    char *record = malloc(record_len);
    if (!record)
        die("malloc record");
    uint32_t magic = REC_MAGIC, trailer = REC_TRAILER;
    memcpy(record, &magic, 4);
    memcpy(record + 4, &kind, 4);
    memcpy(record + 8, &start, 8);
    memcpy(record + 16, &saved, 8);
    memcpy(record + 24, &size, 8);
    if (saved)
        read_all(f->read_fd, record + 32, saved, start);
    memcpy(record + 32 + saved, &trailer, 4);
    write_all(f->journal_fd, record, record_len, f->journal_end);
    free(record);
    f->journal_end += record_len;
    if (end > start)
        mark_saved(f, start, end);
    stats->undo_records++;
    stats->undo_bytes += saved;
}

static void synced(struct tracked_file *f) {
    if (syscall(SYS_ftruncate, f->journal_fd, (off_t)f->journal_header) != 0)
        die("empty journal");
    f->journal_end = f->journal_header;
    f->n_saved = 0;
    stats->syncs++;
    stats->last_sync_ns = now_ns();
}

/* Before a write of `len` bytes at `offset` (-1: the descriptor's position, or the end under O_APPEND). */
static int before_write(int fd, int64_t offset, size_t len) {
    int file = tracked(fd);
    if (file < 0)
        return -1;
    struct tracked_file *f = &files[file];
    if (offset < 0) {
        int flags = (int)syscall(SYS_fcntl, fd, F_GETFL);
        if (flags < 0)
            die("fcntl F_GETFL");
        if (flags & O_APPEND) {
            struct stat st;
            if (syscall(SYS_fstat, fd, &st) != 0)
                die("fstat");
            offset = st.st_size;
        } else {
            offset = (int64_t)syscall(SYS_lseek, fd, (off_t)0, SEEK_CUR);
            if (offset < 0)
                die("lseek");
        }
    }
    stats->tracked_writes++;
    stats->tracked_bytes += len;
    save_region(f, KIND_WRITE, (uint64_t)offset, (uint64_t)offset + len);
    return file;
}

static size_t iov_total(const struct iovec *iov, int n) {
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    return total;
}

/* -- the wrappers: for a tracked descriptor the lock is held from the undo record through the
 * real call, so no sync can fall between a record and the write it protects. */

#define WRAP_WRITE(call, offset, len)                                                                  \
    do {                                                                                               \
        if (!active || tracked_quick(fd) < 0)                                                          \
            return call;                                                                               \
        pthread_mutex_lock(&lock);                                                                     \
        before_write(fd, offset, len);                                                                 \
        ssize_t result = call;                                                                         \
        int saved_errno = errno;                                                                       \
        maybe_kill();                                                                                  \
        pthread_mutex_unlock(&lock);                                                                   \
        errno = saved_errno;                                                                           \
        return result;                                                                                 \
    } while (0)

static void maybe_kill(void) {
    if (kill_after_writes && stats->tracked_writes == kill_after_writes) {
        stats->killed_ns = now_ns();
        syscall(SYS_kill, (pid_t)syscall(SYS_getpid), SIGKILL);
    }
}

/* Cheap pre-check outside the lock: pipes, sockets and terminals are never tracked. */
static int tracked_quick(int fd) {
    struct stat st;
    int saved_errno = errno;
    int regular = fd >= 0 && syscall(SYS_fstat, fd, &st) == 0 && S_ISREG(st.st_mode);
    errno = saved_errno;
    return regular ? 0 : -1;
}

ssize_t write(int fd, const void *buf, size_t len) {
    RESOLVE(write);
    WRAP_WRITE(real_write(fd, buf, len), -1, len);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t offset) {
    RESOLVE(pwrite);
    WRAP_WRITE(real_pwrite(fd, buf, len, offset), offset, len);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t offset) {
    RESOLVE(pwrite64);
    WRAP_WRITE(real_pwrite64(fd, buf, len, offset), offset, len);
}

ssize_t writev(int fd, const struct iovec *iov, int n) {
    RESOLVE(writev);
    WRAP_WRITE(real_writev(fd, iov, n), -1, iov_total(iov, n));
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t offset) {
    RESOLVE(pwritev);
    WRAP_WRITE(real_pwritev(fd, iov, n, offset), offset, iov_total(iov, n));
}

ssize_t pwritev64(int fd, const struct iovec *iov, int n, off_t offset) {
    RESOLVE(pwritev64);
    WRAP_WRITE(real_pwritev64(fd, iov, n, offset), offset, iov_total(iov, n));
}

ssize_t pwritev2(int fd, const struct iovec *iov, int n, off_t offset, int flags) {
    RESOLVE(pwritev2);
    WRAP_WRITE(real_pwritev2(fd, iov, n, offset, flags), offset, iov_total(iov, n));
}

static int truncate_tracked(int fd, off_t length, int (*real)(int, off_t)) {
    if (!active || tracked_quick(fd) < 0)
        return real(fd, length);
    pthread_mutex_lock(&lock);
    int file = tracked(fd);
    if (file >= 0) {
        struct stat st;
        if (syscall(SYS_fstat, fd, &st) != 0)
            die("fstat");
        uint64_t size = (uint64_t)st.st_size, to = length < 0 ? 0 : (uint64_t)length;
        stats->truncates++;
        /* shrinking destroys [to, size); growing only changes the size */
        save_region(&files[file], KIND_TRUNCATE, to < size ? to : size, to < size ? size : size);
    }
    int result = real(fd, length);
    int saved_errno = errno;
    pthread_mutex_unlock(&lock);
    errno = saved_errno;
    return result;
}

int ftruncate(int fd, off_t length) {
    RESOLVE(ftruncate);
    return truncate_tracked(fd, length, real_ftruncate);
}

int ftruncate64(int fd, off_t length) {
    RESOLVE(ftruncate64);
    return truncate_tracked(fd, length, real_ftruncate64);
}

static int sync_tracked(int fd, int (*real)(int)) {
    if (!active || tracked_quick(fd) < 0)
        return real(fd);
    pthread_mutex_lock(&lock);
    int file = tracked(fd);
    int result = real(fd);
    int saved_errno = errno;
    if (result == 0 && file >= 0)
        synced(&files[file]);
    pthread_mutex_unlock(&lock);
    errno = saved_errno;
    return result;
}

int fsync(int fd) {
    RESOLVE(fsync);
    return sync_tracked(fd, real_fsync);
}

int fdatasync(int fd) {
    RESOLVE(fdatasync);
    return sync_tracked(fd, real_fdatasync);
}

int syncfs(int fd) {
    RESOLVE(syncfs);
    if (!active)
        return real_syncfs(fd);
    pthread_mutex_lock(&lock);
    int result = real_syncfs(fd);
    int saved_errno = errno;
    if (result == 0)
        for (int i = 0; i < n_files; i++)
            synced(&files[i]);
    pthread_mutex_unlock(&lock);
    errno = saved_errno;
    return result;
}

void sync(void) {
    RESOLVE(sync);
    if (!active) {
        real_sync();
        return;
    }
    pthread_mutex_lock(&lock);
    real_sync();
    for (int i = 0; i < n_files; i++)
        synced(&files[i]);
    pthread_mutex_unlock(&lock);
}

int close(int fd) {
    RESOLVE(close);
    if (active && fd >= 0 && fd < MAX_CACHED_FDS) {
        pthread_mutex_lock(&lock);
        fd_cache[fd].known = 0;
        pthread_mutex_unlock(&lock);
    }
    return real_close(fd);
}
