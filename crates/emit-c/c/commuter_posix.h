/*
 * The runtime of the commuter POSIX test suite: the state a test starts from, the calls, the
 * checks of their results. Written for C99 and POSIX.1-2008; see commuter_posix.c for the few
 * places that reach beyond (each guarded).
 *
 * A test function describes its initial state (ct_setup_*), builds it (ct_start: files, names
 * and pipes in a fresh directory, then one forked process per process slot, each with its fds
 * at the given numbers and its pages mapped), runs its calls in order, each in its process
 * (ct_open, ct_read, ...), checks each call's result right after it (ct_expect_*), and cleans
 * up (ct_end). Values the system chooses (new fd numbers, the address of a non-fixed mmap,
 * times) are not checked.
 */
#ifndef COMMUTER_POSIX_H
#define COMMUTER_POSIX_H

/*
 * Included first by every file of the suite, so these apply everywhere: POSIX.1-2008 (errno
 * and signal names, the calls), and each C library's switch that also shows its extensions
 * (for MAP_ANONYMOUS or MAP_ANON; without either the runtime maps /dev/zero instead).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1 /* glibc, musl */
#endif
#if defined(__APPLE__) && !defined(_DARWIN_C_SOURCE)
#define _DARWIN_C_SOURCE 1
#endif
#if defined(__NetBSD__) && !defined(_NETBSD_SOURCE)
#define _NETBSD_SOURCE 1
#endif

#include <errno.h>
#include <signal.h>
#include <stddef.h>

/* Limits of a test (the same as the test generator's target checks). */
@LIMITS@
/* One running test (opaque: commuter_posix.c). */
struct ct;

/* A test of the suite: its id, its function, or why it is not run natively. */
struct ct_case {
	const char *id;
	void (*run)(struct ct *t);
	const char *not_run;
};

/* The tests of one call set, in the suite's order. */
struct ct_set {
	const char *name;
	const struct ct_case *cases;
	size_t ncases;
};

/* Every call set of the suite (suite.c). */
extern const struct ct_set ct_sets[];
extern const size_t ct_nsets;

/* open(2) flags beyond O_RDWR. */
#define CT_CREAT 1
#define CT_EXCL 2
#define CT_TRUNC 4

/* The flags of mappings and pipe ends, spelled out. */
#define CT_READONLY 0
#define CT_WRITABLE 1
#define CT_ANYWHERE 0
#define CT_FIXED 1
#define CT_READ_END 0
#define CT_WRITE_END 1

/* lseek(2) origins; CT_SEEK_INVALID passes a value no system accepts. */
enum ct_whence { CT_SEEK_SET, CT_SEEK_CUR, CT_SEEK_END, CT_SEEK_INVALID };

/*
 * The initial state. Inodes and pipes are numbered in the order they are set up, from 0.
 * Data is one value per page (every byte of the page equals it). An inode's hidden links are
 * links from a directory no call names, beyond the names that name it.
 */
void ct_setup_inode(struct ct *t, int inode, const unsigned char *data, size_t pages,
		    unsigned hidden_links);
void ct_setup_name(struct ct *t, const char *name, int inode);
void ct_setup_pipe(struct ct *t, int pipe, const unsigned char *data, size_t chunks);
void ct_setup_fd_file(struct ct *t, int proc, int fd, int inode, long long off);
void ct_setup_fd_pipe(struct ct *t, int proc, int fd, int pipe, int write_end);
/* `populated`: the setup touches the page (writes it, or reads it inside its file) so that it
 * is in the page tables when the calls start; 0 leaves it to the first call that touches it. */
void ct_setup_map_anon(struct ct *t, int proc, unsigned page, int data, int writable,
		       int populated);
void ct_setup_map_file(struct ct *t, int proc, unsigned page, int inode, long long off,
		       int writable, int populated);
/* Builds the state with `procs` processes; on failure the test is an error and the calls
 * that follow do nothing. */
void ct_start(struct ct *t, int procs);

/* The calls, each in process `proc` (name calls run in process 0). */
void ct_open(struct ct *t, int proc, const char *name, int flags);
void ct_link(struct ct *t, const char *old, const char *new_name);
void ct_unlink(struct ct *t, const char *name);
void ct_rename(struct ct *t, const char *src, const char *dst);
void ct_stat(struct ct *t, const char *name);
void ct_fstat(struct ct *t, int proc, int fd);
void ct_lseek(struct ct *t, int proc, int fd, long long off, enum ct_whence whence);
void ct_close(struct ct *t, int proc, int fd);
void ct_pipe(struct ct *t, int proc);
void ct_read(struct ct *t, int proc, int fd);
void ct_write(struct ct *t, int proc, int fd, int data);
void ct_pread(struct ct *t, int proc, int fd, long long off);
void ct_pwrite(struct ct *t, int proc, int fd, long long off, int data);
void ct_mmap_anon(struct ct *t, int proc, int writable, int fixed, unsigned page);
void ct_mmap_file(struct ct *t, int proc, int writable, int fixed, unsigned page, int fd,
		  long long off);
void ct_munmap(struct ct *t, int proc, unsigned page);
void ct_mprotect(struct ct *t, int proc, unsigned page, int writable);
void ct_memread(struct ct *t, int proc, unsigned page);
void ct_memwrite(struct ct *t, int proc, unsigned page, int data);
void ct_sync(struct ct *t);
void ct_fsync(struct ct *t, int proc, int fd);

/* Checks of the last call's result. */
void ct_expect_ret(struct ct *t, long long ret);
/* Success with a value the system chooses. */
void ct_expect_any(struct ct *t);
void ct_expect_errno(struct ct *t, int err, const char *name);
#define ct_expect_err(t, e) ct_expect_errno((t), (e), #e)
void ct_expect_signal_named(struct ct *t, int sig, const char *name);
#define ct_expect_signal(t, s) ct_expect_signal_named((t), (s), #s)
/* read/pread: one whole page, every byte `data`. */
void ct_expect_page(struct ct *t, int data);
/* memread: the byte read. */
void ct_expect_byte(struct ct *t, int data);
/* mmap: mapped at this page of the test area. */
void ct_expect_mapped_at(struct ct *t, unsigned page);
/* stat/fstat of a file: `inode` is a setup inode (or -1: one a call created, not checked),
 * size in bytes, link count. */
void ct_expect_stat(struct ct *t, int inode, long long size, long long nlink);
/* fstat of a pipe. */
void ct_expect_fifo(struct ct *t);

/* Ends the processes and removes every file of the test. */
void ct_end(struct ct *t);

#endif
