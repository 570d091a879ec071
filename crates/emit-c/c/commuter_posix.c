/*
 * The runtime of the commuter POSIX test suite (see commuter_posix.h) and its main().
 *
 * C99 and POSIX.1-2008. Beyond them, guarded: anonymous mappings use MAP_ANONYMOUS or
 * MAP_ANON where the system has one (POSIX.1-2024 added MAP_ANON), else a private mapping of
 * /dev/zero, which behaves the same (the feature macros: commuter_posix.h).
 *
 * How a test runs (as the Linux target's guest runs it, without the tracing): the test's
 * files are created in a fresh directory, first under .inodes/ and linked to their names;
 * one process per process slot is forked, opens the files at the fd numbers the test names,
 * maps its pages, closes every other fd, and waits for calls; then .inodes/ is emptied but
 * for the hidden links, so only the test's names and fds keep the files. Each call is sent
 * to its process over a pipe and its result comes back the same way. A memory access that
 * faults ends with the signal as its result (the process goes on).
 */
#include "commuter_posix.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(MAP_ANONYMOUS)
#define CT_MAP_ANON MAP_ANONYMOUS
#elif defined(MAP_ANON)
#define CT_MAP_ANON MAP_ANON
#endif

#ifndef PATH_MAX
#define PATH_MAX 4096 /* a system without a fixed limit */
#endif

/* The runtime's own fds (pipes to the processes, the setup's pipes) live at or above this,
 * out of the range a test's fds use. */
#define CT_HIGH_FD (CT_MAX_FD + 1)
/* Seconds a process may live: a call that blocks ends the test as an error, not the run. */
#define CT_PROC_TIMEOUT 30

/* ------------------------------------------------------------------ names of errnos */

struct ct_name {
	int value;
	const char *name;
};

static const struct ct_name ct_errnos[] = {
@ERRNOS@};

static const struct ct_name ct_signals[] = {
@SIGNALS@};

static const char *ct_lookup(const struct ct_name *table, size_t n, int value)
{
	size_t i;
	for (i = 0; i < n; i++)
		if (table[i].value == value)
			return table[i].name;
	return NULL;
}

#define CT_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ the test's state */

enum ct_kind { CT_FD_FILE, CT_FD_PIPE };

struct ct_fd {
	int fd;
	int kind;
	int obj; /* inode or pipe */
	int write_end;
	long long off;
};

struct ct_map {
	unsigned page;
	int anon;
	int data;
	int inode;
	long long off;
	int writable;
	int populated;
};

struct ct_proc {
	int nfds;
	struct ct_fd fds[CT_MAX_FD + 1];
	int nmaps;
	struct ct_map maps[CT_MAX_PAGES];
	/* While running. */
	pid_t pid;
	int cmd; /* runtime -> process */
	int res; /* process -> runtime */
};

struct ct_inode {
	const unsigned char *data;
	size_t pages;
	unsigned hidden;
	dev_t dev;
	ino_t ino;
};

struct ct_pipe {
	const unsigned char *data;
	size_t chunks;
	int fd[2];
};

/* The operations a process runs. */
enum ct_opcode {
	CT_OP_OPEN,
	CT_OP_LINK,
	CT_OP_UNLINK,
	CT_OP_RENAME,
	CT_OP_STAT,
	CT_OP_FSTAT,
	CT_OP_LSEEK,
	CT_OP_CLOSE,
	CT_OP_PIPE,
	CT_OP_READ,
	CT_OP_WRITE,
	CT_OP_PREAD,
	CT_OP_PWRITE,
	CT_OP_MMAP,
	CT_OP_MUNMAP,
	CT_OP_MPROTECT,
	CT_OP_MEMREAD,
	CT_OP_MEMWRITE,
	CT_OP_SYNC,
	CT_OP_FSYNC
};

static const char *const ct_op_names[] = {
	"open", "link", "unlink", "rename", "stat", "fstat", "lseek", "close", "pipe", "read",
	"write", "pread", "pwrite", "mmap", "munmap", "mprotect", "memread", "memwrite", "sync",
	"fsync"};

struct ct_op {
	int code;
	int fd;
	long long off;
	int whence;
	int flags;
	unsigned page;
	int data;
	int anon;
	int writable;
	int fixed;
	char name[2][CT_NAME_MAX + 1];
};

/* What a call did, or (status CT_READY / CT_BROKEN) how a process's setup went. */
enum ct_status { CT_OK, CT_ERRNO, CT_SIGNAL, CT_READY, CT_BROKEN };

struct ct_res {
	int status;
	long long ret;
	int err;
	int sig;
	int data;    /* first byte read, or -1 */
	int uniform; /* every byte read equals the first */
	int has_stat;
	unsigned long long dev, ino, nlink;
	long long size;
	int fifo;
	int in_area; /* mmap: the address is in the test area (ret is then the page) */
	char msg[200];
};

struct ct {
	const char *id;
	int ninodes, nnames, npipes, nprocs;
	struct ct_inode inodes[CT_MAX_INODES];
	struct {
		const char *name;
		int inode;
	} names[CT_MAX_NAMES];
	struct ct_pipe pipes[CT_MAX_PIPES];
	struct ct_proc procs[CT_MAX_PROCS];
	int started;
	int broken; /* the test could not be run as written: an error */
	int mismatches;
	int call;   /* calls run so far */
	int checked;
	const char *call_name;
	struct ct_res last;
};

/* The test area: CT_MAX_PAGES pages no mapping of the runtime uses. */
static char *ct_area;
/* Highest fd the runtime has had open (a process closes every fd up to it but its own). */
static int ct_top_fd = 2;
static int ct_verbose;

static void ct_report(struct ct *t, const char *what, const char *fmt, ...)
#if defined(__GNUC__)
	__attribute__((format(printf, 3, 4)))
#endif
	;

static void ct_report(struct ct *t, const char *what, const char *fmt, ...)
{
	va_list ap;
	printf("%s %s: ", what, t->id);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* The test cannot be run as written (reported once): an error, not a mismatch. */
static void ct_error(struct ct *t, const char *msg)
{
	if (!t->broken)
		ct_report(t, "ERROR", "%s", msg);
	t->broken = 1;
}

static void ct_error_setup(struct ct *t, const char *msg)
{
	if (!t->broken)
		ct_report(t, "ERROR", "setup: %s", msg);
	t->broken = 1;
}

/* ------------------------------------------------------------------ setup description */

static int ct_proc_ok(struct ct *t, int proc)
{
	if (proc < 0 || proc >= CT_MAX_PROCS) {
		ct_error(t, "a process slot is out of range");
		return 0;
	}
	return 1;
}

void ct_setup_inode(struct ct *t, int inode, const unsigned char *data, size_t pages,
		    unsigned hidden_links)
{
	if (inode != t->ninodes || inode >= CT_MAX_INODES) {
		ct_error(t, "inodes must be set up in order, within the limit");
		return;
	}
	t->inodes[inode].data = data;
	t->inodes[inode].pages = pages;
	t->inodes[inode].hidden = hidden_links;
	t->ninodes++;
}

void ct_setup_name(struct ct *t, const char *name, int inode)
{
	if (t->nnames >= CT_MAX_NAMES || inode < 0 || inode >= t->ninodes) {
		ct_error(t, "a name names no inode, or too many names");
		return;
	}
	t->names[t->nnames].name = name;
	t->names[t->nnames].inode = inode;
	t->nnames++;
}

void ct_setup_pipe(struct ct *t, int pipe, const unsigned char *data, size_t chunks)
{
	if (pipe != t->npipes || pipe >= CT_MAX_PIPES) {
		ct_error(t, "pipes must be set up in order, within the limit");
		return;
	}
	t->pipes[pipe].data = data;
	t->pipes[pipe].chunks = chunks;
	t->pipes[pipe].fd[0] = t->pipes[pipe].fd[1] = -1;
	t->npipes++;
}

static struct ct_fd *ct_new_fd(struct ct *t, int proc, int fd)
{
	struct ct_proc *p;
	if (!ct_proc_ok(t, proc))
		return NULL;
	p = &t->procs[proc];
	if (fd < CT_MIN_FD || fd > CT_MAX_FD || p->nfds > CT_MAX_FD) {
		ct_error(t, "a setup fd is out of the test's range");
		return NULL;
	}
	p->fds[p->nfds].fd = fd;
	return &p->fds[p->nfds++];
}

void ct_setup_fd_file(struct ct *t, int proc, int fd, int inode, long long off)
{
	struct ct_fd *f = ct_new_fd(t, proc, fd);
	if (!f)
		return;
	if (inode < 0 || inode >= t->ninodes) {
		ct_error(t, "an fd refers to no inode");
		return;
	}
	f->kind = CT_FD_FILE;
	f->obj = inode;
	f->off = off;
}

void ct_setup_fd_pipe(struct ct *t, int proc, int fd, int pipe, int write_end)
{
	struct ct_fd *f = ct_new_fd(t, proc, fd);
	if (!f)
		return;
	if (pipe < 0 || pipe >= t->npipes) {
		ct_error(t, "an fd refers to no pipe");
		return;
	}
	f->kind = CT_FD_PIPE;
	f->obj = pipe;
	f->write_end = write_end;
}

static struct ct_map *ct_new_map(struct ct *t, int proc, unsigned page)
{
	struct ct_proc *p;
	if (!ct_proc_ok(t, proc))
		return NULL;
	p = &t->procs[proc];
	if (page >= CT_MAX_PAGES || p->nmaps >= CT_MAX_PAGES) {
		ct_error(t, "a setup mapping is out of the test area");
		return NULL;
	}
	p->maps[p->nmaps].page = page;
	return &p->maps[p->nmaps++];
}

void ct_setup_map_anon(struct ct *t, int proc, unsigned page, int data, int writable,
		       int populated)
{
	struct ct_map *m = ct_new_map(t, proc, page);
	if (!m)
		return;
	m->anon = 1;
	m->data = data;
	m->writable = writable;
	m->populated = populated;
}

void ct_setup_map_file(struct ct *t, int proc, unsigned page, int inode, long long off,
		       int writable, int populated)
{
	struct ct_map *m = ct_new_map(t, proc, page);
	if (!m)
		return;
	if (inode < 0 || inode >= t->ninodes) {
		ct_error(t, "a mapping refers to no inode");
		return;
	}
	m->anon = 0;
	m->inode = inode;
	m->off = off;
	m->writable = writable;
	m->populated = populated;
}

/* ------------------------------------------------------------------ helpers */

/* Moves a runtime fd above the test's fd range. */
static int ct_high(int fd)
{
	int h;
	if (fd < 0)
		return -1;
	h = fcntl(fd, F_DUPFD, CT_HIGH_FD);
	close(fd);
	if (h > ct_top_fd)
		ct_top_fd = h;
	return h;
}

static int ct_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* 1 on success, 0 at end of file, -1 on error. */
static int ct_read_all(int fd, void *buf, size_t n)
{
	char *p = buf;
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			return 0;
		got += (size_t)r;
	}
	return 1;
}

static void ct_inode_path(char *buf, size_t n, int inode)
{
	snprintf(buf, n, ".inodes/%d", inode);
}

static int ct_prot(int writable)
{
	return PROT_READ | (writable ? PROT_WRITE : 0);
}

static void *ct_page_addr(unsigned page)
{
	return ct_area + (size_t)page * CT_PAGE;
}

/* A private anonymous mapping (see the top of the file). */
static void *ct_mmap_anonymous(void *addr, int prot, int flags)
{
#ifdef CT_MAP_ANON
	return mmap(addr, CT_PAGE, prot, flags | MAP_PRIVATE | CT_MAP_ANON, -1, 0);
#else
	void *p;
	int fd = open("/dev/zero", O_RDWR);
	if (fd < 0)
		return MAP_FAILED;
	p = mmap(addr, CT_PAGE, prot, flags | MAP_PRIVATE, fd, 0);
	close(fd);
	return p;
#endif
}

/* ------------------------------------------------------------------ a test's process */

static sigjmp_buf ct_fault_jmp;
static volatile sig_atomic_t ct_fault_armed;

static void ct_on_fault(int sig)
{
	if (ct_fault_armed) {
		ct_fault_armed = 0;
		siglongjmp(ct_fault_jmp, sig);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void ct_broken(int res, const char *what, int err)
{
	struct ct_res r;
	memset(&r, 0, sizeof r);
	r.status = CT_BROKEN;
	snprintf(r.msg, sizeof r.msg, "%s: %s", what, strerror(err));
	ct_write_all(res, &r, sizeof r);
	_exit(1);
}

static void ct_proc_setup(struct ct *t, struct ct_proc *p)
{
	struct stat st;
	char path[64];
	int i, fd;
	for (i = 0; i < p->nfds; i++) {
		struct ct_fd *f = &p->fds[i];
		int from;
		if (f->kind == CT_FD_FILE) {
			ct_inode_path(path, sizeof path, f->obj);
			from = open(path, O_RDWR);
			if (from < 0)
				ct_broken(p->res, "open an inode for a setup fd", errno);
			if (lseek(from, (off_t)f->off, SEEK_SET) < 0)
				ct_broken(p->res, "seek a setup fd", errno);
		} else {
			from = t->pipes[f->obj].fd[f->write_end ? 1 : 0];
		}
		if (from != f->fd && dup2(from, f->fd) < 0)
			ct_broken(p->res, "dup2 a setup fd", errno);
		if (f->kind == CT_FD_FILE && from != f->fd)
			close(from);
	}
	for (i = 0; i < p->nmaps; i++) {
		struct ct_map *m = &p->maps[i];
		void *addr = ct_page_addr(m->page);
		if (m->anon) {
			/* Filled while writable, then given its protection. */
			if (ct_mmap_anonymous(addr, ct_prot(1), MAP_FIXED) == MAP_FAILED)
				ct_broken(p->res, "map an anonymous setup page", errno);
			if (m->populated)
				memset(addr, m->data, CT_PAGE);
			if (mprotect(addr, CT_PAGE, ct_prot(m->writable)) != 0)
				ct_broken(p->res, "protect an anonymous setup page", errno);
		} else {
			ct_inode_path(path, sizeof path, m->inode);
			fd = open(path, O_RDWR);
			if (fd < 0)
				ct_broken(p->res, "open an inode for a setup mapping", errno);
			if (mmap(addr, CT_PAGE, ct_prot(m->writable), MAP_SHARED | MAP_FIXED, fd,
				 (off_t)m->off) == MAP_FAILED)
				ct_broken(p->res, "map a file setup page", errno);
			/* Fault a populated page in (only inside the file: past its end a touch is
			 * SIGBUS). */
			if (m->populated && fstat(fd, &st) == 0 && m->off < st.st_size)
				(void)*(volatile unsigned char *)addr;
			close(fd);
		}
	}
	/* Only the test's fds (and the runtime's two pipes) stay open. */
	for (fd = 3; fd <= ct_top_fd; fd++) {
		int keep = fd == p->cmd || fd == p->res;
		for (i = 0; i < p->nfds && !keep; i++)
			keep = p->fds[i].fd == fd;
		if (!keep)
			close(fd);
	}
}

static void ct_fill_stat(struct ct_res *r, const struct stat *st)
{
	r->has_stat = 1;
	r->dev = (unsigned long long)st->st_dev;
	r->ino = (unsigned long long)st->st_ino;
	r->nlink = (unsigned long long)st->st_nlink;
	r->size = (long long)st->st_size;
	r->fifo = S_ISFIFO(st->st_mode) ? 1 : 0;
}

static unsigned char ct_buf[CT_PAGE];

/* A load or store of a test page; a fault is the result. Kept apart from its caller so that
 * nothing the caller holds in registers is live across the jump. */
static void ct_memory(const struct ct_op *op, struct ct_res *r)
{
	volatile unsigned char *p = (volatile unsigned char *)ct_page_addr(op->page);
	int sig = sigsetjmp(ct_fault_jmp, 1);
	if (sig != 0) {
		r->status = CT_SIGNAL;
		r->sig = sig;
		return;
	}
	ct_fault_armed = 1;
	if (op->code == CT_OP_MEMREAD)
		r->data = *p;
	else
		*p = (unsigned char)op->data;
	ct_fault_armed = 0;
	r->ret = 0;
}

static void ct_perform(const struct ct_op *op, struct ct_res *r)
{
	struct stat st;
	long long ret = 0;
	int fds[2];
	void *addr;
	memset(r, 0, sizeof *r);
	r->status = CT_OK;
	r->data = -1;
	errno = 0;
	switch (op->code) {
	case CT_OP_OPEN: {
		int flags = O_RDWR;
		if (op->flags & CT_CREAT)
			flags |= O_CREAT;
		if (op->flags & CT_EXCL)
			flags |= O_EXCL;
		if (op->flags & CT_TRUNC)
			flags |= O_TRUNC;
		ret = open(op->name[0], flags, 0666);
		break;
	}
	case CT_OP_LINK:
		ret = link(op->name[0], op->name[1]);
		break;
	case CT_OP_UNLINK:
		ret = unlink(op->name[0]);
		break;
	case CT_OP_RENAME:
		ret = rename(op->name[0], op->name[1]);
		break;
	case CT_OP_STAT:
		ret = stat(op->name[0], &st);
		if (ret == 0)
			ct_fill_stat(r, &st);
		break;
	case CT_OP_FSTAT:
		ret = fstat(op->fd, &st);
		if (ret == 0)
			ct_fill_stat(r, &st);
		break;
	case CT_OP_LSEEK: {
		/* 999 is no origin on any system (Linux's largest is SEEK_HOLE, 4). */
		static const int whence[] = {SEEK_SET, SEEK_CUR, SEEK_END, 999};
		ret = (long long)lseek(op->fd, (off_t)op->off, whence[op->whence]);
		break;
	}
	case CT_OP_CLOSE:
		ret = close(op->fd);
		break;
	case CT_OP_PIPE:
		/* Non-blocking ends, as the setup's pipes (Linux: pipe2(O_NONBLOCK)). */
		ret = pipe(fds);
		if (ret == 0) {
			fcntl(fds[0], F_SETFL, O_NONBLOCK);
			fcntl(fds[1], F_SETFL, O_NONBLOCK);
		}
		break;
	case CT_OP_READ:
	case CT_OP_PREAD:
		memset(ct_buf, 0xee, sizeof ct_buf);
		if (op->code == CT_OP_READ)
			ret = (long long)read(op->fd, ct_buf, CT_PAGE);
		else
			ret = (long long)pread(op->fd, ct_buf, CT_PAGE, (off_t)op->off);
		if (ret > 0) {
			long long i;
			r->data = ct_buf[0];
			r->uniform = 1;
			for (i = 1; i < ret; i++)
				if (ct_buf[i] != ct_buf[0])
					r->uniform = 0;
		}
		break;
	case CT_OP_WRITE:
	case CT_OP_PWRITE:
		memset(ct_buf, op->data, sizeof ct_buf);
		if (op->code == CT_OP_WRITE)
			ret = (long long)write(op->fd, ct_buf, CT_PAGE);
		else
			ret = (long long)pwrite(op->fd, ct_buf, CT_PAGE, (off_t)op->off);
		break;
	case CT_OP_MMAP:
		addr = op->fixed ? ct_page_addr(op->page) : NULL;
		if (op->anon)
			addr = ct_mmap_anonymous(addr, ct_prot(op->writable),
						 op->fixed ? MAP_FIXED : 0);
		else
			addr = mmap(addr, CT_PAGE, ct_prot(op->writable),
				    MAP_SHARED | (op->fixed ? MAP_FIXED : 0), op->fd, (off_t)op->off);
		if (addr == MAP_FAILED) {
			ret = -1;
		} else if ((char *)addr >= ct_area &&
			   (char *)addr < ct_area + (size_t)CT_MAX_PAGES * CT_PAGE) {
			r->in_area = 1;
			ret = (long long)(((char *)addr - ct_area) / CT_PAGE);
		} else {
			ret = (long long)(uintptr_t)addr;
		}
		break;
	case CT_OP_MUNMAP:
		ret = munmap(ct_page_addr(op->page), CT_PAGE);
		break;
	case CT_OP_MPROTECT:
		ret = mprotect(ct_page_addr(op->page), CT_PAGE, ct_prot(op->writable));
		break;
	case CT_OP_MEMREAD:
	case CT_OP_MEMWRITE:
		ct_memory(op, r);
		return;
	case CT_OP_SYNC:
		sync();
		break;
	case CT_OP_FSYNC:
		ret = fsync(op->fd);
		break;
	default:
		ret = -1;
		errno = EINVAL;
	}
	r->ret = ret;
	if (ret == -1) {
		r->status = CT_ERRNO;
		r->err = errno;
	}
}

/* A test process: set up, report ready, run calls until the runtime closes the pipe. */
static void ct_proc_main(struct ct *t, struct ct_proc *p)
{
	struct sigaction sa;
	struct ct_op op;
	struct ct_res r;
	ct_proc_setup(t, p);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = ct_on_fault;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	alarm(CT_PROC_TIMEOUT);
	memset(&r, 0, sizeof r);
	r.status = CT_READY;
	if (ct_write_all(p->res, &r, sizeof r) != 0)
		_exit(1);
	while (ct_read_all(p->cmd, &op, sizeof op) == 1) {
		ct_perform(&op, &r);
		if (ct_write_all(p->res, &r, sizeof r) != 0)
			_exit(1);
	}
	_exit(0);
}

/* ------------------------------------------------------------------ the runtime's side */

static void ct_stop_procs(struct ct *t)
{
	int i, status;
	for (i = 0; i < t->nprocs; i++) {
		struct ct_proc *p = &t->procs[i];
		if (p->cmd >= 0)
			close(p->cmd);
		p->cmd = -1;
	}
	for (i = 0; i < t->nprocs; i++) {
		struct ct_proc *p = &t->procs[i];
		if (p->pid > 0) {
			while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
				;
		}
		p->pid = -1;
		if (p->res >= 0)
			close(p->res);
		p->res = -1;
	}
}

static void ct_close_pipes(struct ct *t)
{
	int i;
	for (i = 0; i < t->npipes; i++) {
		if (t->pipes[i].fd[0] >= 0)
			close(t->pipes[i].fd[0]);
		if (t->pipes[i].fd[1] >= 0)
			close(t->pipes[i].fd[1]);
		t->pipes[i].fd[0] = t->pipes[i].fd[1] = -1;
	}
}

/* Removes every entry of the current directory (and of .inodes/, the only subdirectory). */
static int ct_clean_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[2 * CT_NAME_MAX + 16];
	int ok = 1;
	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			ok &= ct_clean_dir(path);
			ok &= rmdir(path) == 0;
		} else {
			ok &= unlink(path) == 0;
		}
	}
	closedir(d);
	return ok;
}

static int ct_fail(struct ct *t, const char *what)
{
	char msg[256];
	snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
	ct_error_setup(t, msg);
	return 0;
}

static int ct_make_files(struct ct *t)
{
	char path[64], hidden[80];
	unsigned char page[CT_PAGE];
	struct stat st;
	int i, fd;
	size_t k;
	unsigned h;
	if (mkdir(".inodes", 0700) != 0)
		return ct_fail(t, "mkdir .inodes");
	for (i = 0; i < t->ninodes; i++) {
		struct ct_inode *in = &t->inodes[i];
		ct_inode_path(path, sizeof path, i);
		fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0666);
		if (fd < 0)
			return ct_fail(t, "create an inode");
		for (k = 0; k < in->pages; k++) {
			memset(page, in->data[k], sizeof page);
			if (ct_write_all(fd, page, sizeof page) != 0) {
				close(fd);
				return ct_fail(t, "write an inode's data");
			}
		}
		if (fstat(fd, &st) != 0) {
			close(fd);
			return ct_fail(t, "fstat an inode");
		}
		close(fd);
		in->dev = st.st_dev;
		in->ino = st.st_ino;
		for (h = 0; h < in->hidden; h++) {
			snprintf(hidden, sizeof hidden, ".inodes/%d.%u", i, h);
			if (link(path, hidden) != 0)
				return ct_fail(t, "link a hidden link");
		}
	}
	for (i = 0; i < t->nnames; i++) {
		ct_inode_path(path, sizeof path, t->names[i].inode);
		if (link(path, t->names[i].name) != 0)
			return ct_fail(t, "link a name");
	}
	for (i = 0; i < t->npipes; i++) {
		struct ct_pipe *p = &t->pipes[i];
		int fds[2];
		if (pipe(fds) != 0)
			return ct_fail(t, "pipe");
		p->fd[0] = ct_high(fds[0]);
		p->fd[1] = ct_high(fds[1]);
		if (p->fd[0] < 0 || p->fd[1] < 0)
			return ct_fail(t, "move a pipe's fds");
		fcntl(p->fd[0], F_SETFL, O_NONBLOCK);
		fcntl(p->fd[1], F_SETFL, O_NONBLOCK);
		for (k = 0; k < p->chunks; k++) {
			memset(page, p->data[k], sizeof page);
			if (write(p->fd[1], page, sizeof page) != (ssize_t)sizeof page)
				return ct_fail(t, "fill a pipe");
		}
	}
	return 1;
}

/* Leaves only the test's names and the hidden links: what the processes hold stays. */
static int ct_release_files(struct ct *t)
{
	char path[64];
	int i, hidden = 0;
	for (i = 0; i < t->ninodes; i++) {
		ct_inode_path(path, sizeof path, i);
		if (unlink(path) != 0)
			return ct_fail(t, "unlink an inode's setup name");
		hidden |= t->inodes[i].hidden > 0;
	}
	if (!hidden && rmdir(".inodes") != 0)
		return ct_fail(t, "rmdir .inodes");
	ct_close_pipes(t);
	return 1;
}

void ct_start(struct ct *t, int procs)
{
	int i;
	if (t->broken)
		return;
	if (procs < 1 || procs > CT_MAX_PROCS) {
		ct_error(t, "too many processes");
		return;
	}
	t->started = 1;
	t->nprocs = procs;
	for (i = 0; i < procs; i++) {
		t->procs[i].pid = -1;
		t->procs[i].cmd = t->procs[i].res = -1;
	}
	if (!ct_make_files(t))
		return;
	fflush(stdout);
	for (i = 0; i < procs; i++) {
		struct ct_proc *p = &t->procs[i];
		int cmd[2], res[2];
		if (pipe(cmd) != 0) {
			ct_fail(t, "pipe");
			return;
		}
		if (pipe(res) != 0) {
			close(cmd[0]);
			close(cmd[1]);
			ct_fail(t, "pipe");
			return;
		}
		cmd[0] = ct_high(cmd[0]);
		cmd[1] = ct_high(cmd[1]);
		res[0] = ct_high(res[0]);
		res[1] = ct_high(res[1]);
		p->pid = fork();
		if (p->pid == 0) {
			p->cmd = cmd[0];
			p->res = res[1];
			ct_proc_main(t, p);
		}
		close(cmd[0]);
		close(res[1]);
		p->cmd = cmd[1];
		p->res = res[0];
		if (p->pid < 0) {
			ct_fail(t, "fork");
			return;
		}
	}
	for (i = 0; i < procs; i++) {
		struct ct_res r;
		int got = ct_read_all(t->procs[i].res, &r, sizeof r);
		if (got != 1 || r.status != CT_READY) {
			char msg[256];
			snprintf(msg, sizeof msg, "process %d: %s", i,
				 got == 1 ? r.msg : "ended before it was set up");
			ct_error_setup(t, msg);
			return;
		}
	}
	ct_release_files(t);
}

void ct_end(struct ct *t)
{
	if (t->started)
		ct_stop_procs(t);
	ct_close_pipes(t);
	if (t->started && !ct_clean_dir(".")) {
		ct_error(t, "cleanup: the test directory could not be emptied");
	}
	t->started = 0;
}

/* ------------------------------------------------------------------ calls */

static void ct_run(struct ct *t, int proc, struct ct_op *op)
{
	struct ct_proc *p;
	char msg[96];
	t->call_name = ct_op_names[op->code];
	t->call++;
	t->checked = 0;
	memset(&t->last, 0, sizeof t->last);
	if (t->broken)
		return;
	if (!t->started) {
		ct_error(t, "a call before ct_start");
		return;
	}
	if (proc < 0 || proc >= t->nprocs) {
		snprintf(msg, sizeof msg, "call %c runs in process %d, not started", 'a' + t->call - 1,
			 proc);
		ct_error(t, msg);
		return;
	}
	p = &t->procs[proc];
	if (ct_write_all(p->cmd, op, sizeof *op) != 0 ||
	    ct_read_all(p->res, &t->last, sizeof t->last) != 1) {
		snprintf(msg, sizeof msg, "process %d ended during call %c (%s)", proc,
			 'a' + t->call - 1, t->call_name);
		ct_error(t, msg);
	}
}

static struct ct_op ct_new_op(int code)
{
	struct ct_op op;
	memset(&op, 0, sizeof op);
	op.code = code;
	return op;
}

static void ct_set_name(struct ct_op *op, int i, const char *name)
{
	strncpy(op->name[i], name, CT_NAME_MAX);
	op->name[i][CT_NAME_MAX] = '\0';
}

void ct_open(struct ct *t, int proc, const char *name, int flags)
{
	struct ct_op op = ct_new_op(CT_OP_OPEN);
	ct_set_name(&op, 0, name);
	op.flags = flags;
	ct_run(t, proc, &op);
}

void ct_link(struct ct *t, const char *old, const char *new_name)
{
	struct ct_op op = ct_new_op(CT_OP_LINK);
	ct_set_name(&op, 0, old);
	ct_set_name(&op, 1, new_name);
	ct_run(t, 0, &op);
}

void ct_unlink(struct ct *t, const char *name)
{
	struct ct_op op = ct_new_op(CT_OP_UNLINK);
	ct_set_name(&op, 0, name);
	ct_run(t, 0, &op);
}

void ct_rename(struct ct *t, const char *src, const char *dst)
{
	struct ct_op op = ct_new_op(CT_OP_RENAME);
	ct_set_name(&op, 0, src);
	ct_set_name(&op, 1, dst);
	ct_run(t, 0, &op);
}

void ct_stat(struct ct *t, const char *name)
{
	struct ct_op op = ct_new_op(CT_OP_STAT);
	ct_set_name(&op, 0, name);
	ct_run(t, 0, &op);
}

static void ct_fd_call(struct ct *t, int code, int proc, int fd)
{
	struct ct_op op = ct_new_op(code);
	op.fd = fd;
	ct_run(t, proc, &op);
}

void ct_fstat(struct ct *t, int proc, int fd)
{
	ct_fd_call(t, CT_OP_FSTAT, proc, fd);
}

void ct_lseek(struct ct *t, int proc, int fd, long long off, enum ct_whence whence)
{
	struct ct_op op = ct_new_op(CT_OP_LSEEK);
	op.fd = fd;
	op.off = off;
	op.whence = (int)whence;
	ct_run(t, proc, &op);
}

void ct_close(struct ct *t, int proc, int fd)
{
	ct_fd_call(t, CT_OP_CLOSE, proc, fd);
}

void ct_pipe(struct ct *t, int proc)
{
	struct ct_op op = ct_new_op(CT_OP_PIPE);
	ct_run(t, proc, &op);
}

void ct_read(struct ct *t, int proc, int fd)
{
	ct_fd_call(t, CT_OP_READ, proc, fd);
}

void ct_write(struct ct *t, int proc, int fd, int data)
{
	struct ct_op op = ct_new_op(CT_OP_WRITE);
	op.fd = fd;
	op.data = data;
	ct_run(t, proc, &op);
}

void ct_pread(struct ct *t, int proc, int fd, long long off)
{
	struct ct_op op = ct_new_op(CT_OP_PREAD);
	op.fd = fd;
	op.off = off;
	ct_run(t, proc, &op);
}

void ct_pwrite(struct ct *t, int proc, int fd, long long off, int data)
{
	struct ct_op op = ct_new_op(CT_OP_PWRITE);
	op.fd = fd;
	op.off = off;
	op.data = data;
	ct_run(t, proc, &op);
}

void ct_mmap_anon(struct ct *t, int proc, int writable, int fixed, unsigned page)
{
	struct ct_op op = ct_new_op(CT_OP_MMAP);
	op.anon = 1;
	op.writable = writable;
	op.fixed = fixed;
	op.page = page;
	ct_run(t, proc, &op);
}

void ct_mmap_file(struct ct *t, int proc, int writable, int fixed, unsigned page, int fd,
		  long long off)
{
	struct ct_op op = ct_new_op(CT_OP_MMAP);
	op.writable = writable;
	op.fixed = fixed;
	op.page = page;
	op.fd = fd;
	op.off = off;
	ct_run(t, proc, &op);
}

static void ct_page_call(struct ct *t, int code, int proc, unsigned page, int writable, int data)
{
	struct ct_op op = ct_new_op(code);
	op.page = page;
	op.writable = writable;
	op.data = data;
	ct_run(t, proc, &op);
}

void ct_munmap(struct ct *t, int proc, unsigned page)
{
	ct_page_call(t, CT_OP_MUNMAP, proc, page, 0, 0);
}

void ct_mprotect(struct ct *t, int proc, unsigned page, int writable)
{
	ct_page_call(t, CT_OP_MPROTECT, proc, page, writable, 0);
}

void ct_memread(struct ct *t, int proc, unsigned page)
{
	ct_page_call(t, CT_OP_MEMREAD, proc, page, 0, 0);
}

void ct_memwrite(struct ct *t, int proc, unsigned page, int data)
{
	ct_page_call(t, CT_OP_MEMWRITE, proc, page, 0, data);
}

void ct_sync(struct ct *t)
{
	struct ct_op op = ct_new_op(CT_OP_SYNC);
	ct_run(t, 0, &op);
}

void ct_fsync(struct ct *t, int proc, int fd)
{
	ct_fd_call(t, CT_OP_FSYNC, proc, fd);
}

/* ------------------------------------------------------------------ checks */

/* How the last call ended, in words. */
static void ct_describe(const struct ct_res *r, char *buf, size_t n)
{
	const char *name;
	switch (r->status) {
	case CT_ERRNO:
		name = ct_lookup(ct_errnos, CT_LEN(ct_errnos), r->err);
		if (name)
			snprintf(buf, n, "-1 %s", name);
		else
			snprintf(buf, n, "-1 errno %d (%s)", r->err, strerror(r->err));
		break;
	case CT_SIGNAL:
		name = ct_lookup(ct_signals, CT_LEN(ct_signals), r->sig);
		if (name)
			snprintf(buf, n, "%s", name);
		else
			snprintf(buf, n, "signal %d", r->sig);
		break;
	default:
		snprintf(buf, n, "%lld", r->ret);
	}
}

/* Whether a check can be made: the test runs and the call ran. */
static int ct_checking(struct ct *t)
{
	t->checked = 1;
	return !t->broken;
}

static void ct_mismatch(struct ct *t, const char *expected, const char *detail)
{
	char got[128];
	ct_describe(&t->last, got, sizeof got);
	ct_report(t, "FAIL", "call %c (%s): expected %s, got %s", 'a' + t->call - 1, t->call_name,
		  expected, detail ? detail : got);
	t->mismatches++;
}

void ct_expect_ret(struct ct *t, long long ret)
{
	char want[64];
	if (!ct_checking(t))
		return;
	if (t->last.status != CT_OK || t->last.ret != ret) {
		snprintf(want, sizeof want, "%lld", ret);
		ct_mismatch(t, want, NULL);
	}
}

void ct_expect_any(struct ct *t)
{
	if (!ct_checking(t))
		return;
	if (t->last.status != CT_OK)
		ct_mismatch(t, "success", NULL);
}

void ct_expect_errno(struct ct *t, int err, const char *name)
{
	char want[64];
	if (!ct_checking(t))
		return;
	if (t->last.status != CT_ERRNO || t->last.err != err) {
		snprintf(want, sizeof want, "-1 %s", name);
		ct_mismatch(t, want, NULL);
	}
}

void ct_expect_signal_named(struct ct *t, int sig, const char *name)
{
	if (!ct_checking(t))
		return;
	if (t->last.status != CT_SIGNAL || t->last.sig != sig)
		ct_mismatch(t, name, NULL);
}

void ct_expect_page(struct ct *t, int data)
{
	char want[64], got[128];
	const struct ct_res *r = &t->last;
	if (!ct_checking(t))
		return;
	snprintf(want, sizeof want, "a page of %d", data);
	if (r->status != CT_OK || r->ret != CT_PAGE) {
		ct_mismatch(t, want, NULL);
	} else if (r->data != data || !r->uniform) {
		snprintf(got, sizeof got, "a page starting with %d%s", r->data,
			 r->uniform ? "" : " and other bytes");
		ct_mismatch(t, want, got);
	}
}

void ct_expect_byte(struct ct *t, int data)
{
	char want[64], got[64];
	if (!ct_checking(t))
		return;
	snprintf(want, sizeof want, "the byte %d", data);
	if (t->last.status != CT_OK) {
		ct_mismatch(t, want, NULL);
	} else if (t->last.data != data) {
		snprintf(got, sizeof got, "the byte %d", t->last.data);
		ct_mismatch(t, want, got);
	}
}

void ct_expect_mapped_at(struct ct *t, unsigned page)
{
	char want[64], got[64];
	if (!ct_checking(t))
		return;
	snprintf(want, sizeof want, "page %u", page);
	if (t->last.status != CT_OK) {
		ct_mismatch(t, want, NULL);
	} else if (!t->last.in_area || t->last.ret != (long long)page) {
		if (t->last.in_area)
			snprintf(got, sizeof got, "page %lld", t->last.ret);
		else
			snprintf(got, sizeof got, "address %#llx outside the test area",
				 (unsigned long long)t->last.ret);
		ct_mismatch(t, want, got);
	}
}

void ct_expect_stat(struct ct *t, int inode, long long size, long long nlink)
{
	const struct ct_res *r = &t->last;
	char want[96], got[160];
	if (!ct_checking(t))
		return;
	snprintf(want, sizeof want, "a file of %lld bytes, %lld links", size, nlink);
	if (r->status != CT_OK || !r->has_stat) {
		ct_mismatch(t, want, NULL);
		return;
	}
	if (r->fifo || r->size != size || r->nlink != (unsigned long long)nlink) {
		snprintf(got, sizeof got, "a %s of %lld bytes, %llu links", r->fifo ? "pipe" : "file",
			 r->size, r->nlink);
		ct_mismatch(t, want, got);
	}
	if (inode >= 0 && inode < t->ninodes &&
	    (r->ino != (unsigned long long)t->inodes[inode].ino ||
	     r->dev != (unsigned long long)t->inodes[inode].dev)) {
		snprintf(want, sizeof want, "the setup's inode %d", inode);
		snprintf(got, sizeof got, "st_ino %llu", r->ino);
		ct_mismatch(t, want, got);
	}
}

void ct_expect_fifo(struct ct *t)
{
	if (!ct_checking(t))
		return;
	if (t->last.status != CT_OK || !t->last.has_stat)
		ct_mismatch(t, "a pipe", NULL);
	else if (!t->last.fifo)
		ct_mismatch(t, "a pipe", "a file");
}

/* ------------------------------------------------------------------ main */

static void ct_usage(FILE *to)
{
	fprintf(to,
		"usage: commuter-posix-tests [-v] [-l] [-d DIR] [SELECTOR...]\n"
		"  Runs the POSIX tests the selectors name (all without one) and prints a line per\n"
		"  failing test and a summary; exit status 1 if any test failed, 2 on bad usage.\n"
		"  SELECTOR  a test id (open_open_0_0) or a call set (open/open)\n"
		"  -l        list the selected tests and exit\n"
		"  -v        also print a line per passing test\n"
		"  -d DIR    make the test directory under DIR (default: $TMPDIR, else /tmp)\n");
}

static int ct_selected(const struct ct_set *set, const struct ct_case *c, char **sel, int nsel,
		       int *used)
{
	int i, any = nsel == 0;
	for (i = 0; i < nsel; i++) {
		if (strcmp(sel[i], set->name) == 0 || strcmp(sel[i], c->id) == 0) {
			used[i] = 1;
			any = 1;
		}
	}
	return any;
}

/* A window of CT_MAX_PAGES pages that nothing maps: tests map their pages into it with
 * MAP_FIXED. Asked for far from where systems place mappings by themselves (on 64-bit
 * systems 1 TiB, as the Linux target's guest), so that a non-fixed mmap does not land in it. */
static int ct_reserve_area(void)
{
	size_t len = (size_t)CT_MAX_PAGES * CT_PAGE;
	void *hint = NULL;
	void *p;
	int fd = -1;
	if (sizeof(void *) >= 8)
		hint = (void *)(uintptr_t)(1ULL << 40); /* a 32-bit build never takes this branch */
#ifdef CT_MAP_ANON
	p = mmap(hint, len, PROT_NONE, MAP_PRIVATE | CT_MAP_ANON, -1, 0);
#else
	fd = open("/dev/zero", O_RDWR);
	p = fd < 0 ? MAP_FAILED : mmap(hint, len, PROT_NONE, MAP_PRIVATE, fd, 0);
#endif
	if (p == MAP_FAILED)
		return 0;
	if (fd >= 0)
		close(fd);
	munmap(p, len);
	ct_area = p;
	return 1;
}

static struct ct ct_test;

int main(int argc, char **argv)
{
	const char *base = getenv("TMPDIR");
	char dir[PATH_MAX];
	int *used, opt, list = 0, nsel, i, status = 0;
	size_t s, k;
	unsigned long passed = 0, failed = 0, errors = 0, not_run = 0;
	struct sigaction sa;
	while ((opt = getopt(argc, argv, "vld:h")) != -1) {
		switch (opt) {
		case 'v':
			ct_verbose = 1;
			break;
		case 'l':
			list = 1;
			break;
		case 'd':
			base = optarg;
			break;
		case 'h':
			ct_usage(stdout);
			return 0;
		default:
			ct_usage(stderr);
			return 2;
		}
	}
	nsel = argc - optind;
	used = calloc((size_t)nsel + 1, sizeof *used);
	if (!used)
		return 2;
	if (list) {
		for (s = 0; s < ct_nsets; s++)
			for (k = 0; k < ct_sets[s].ncases; k++)
				if (ct_selected(&ct_sets[s], &ct_sets[s].cases[k], argv + optind, nsel,
						used))
					printf("%s %s\n", ct_sets[s].name, ct_sets[s].cases[k].id);
	} else {
		/* A write to a pipe without readers fails with EPIPE instead of ending the process. */
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = SIG_IGN;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGPIPE, &sa, NULL);
		/* No inherited fd may sit in the test's fd range. */
		for (i = 3; i < CT_HIGH_FD; i++)
			close(i);
		if (!ct_reserve_area()) {
			fprintf(stderr, "commuter-posix-tests: cannot reserve %d pages of address space: %s\n",
				CT_MAX_PAGES, strerror(errno));
			return 2;
		}
		if (!base || !*base)
			base = "/tmp";
		if (snprintf(dir, sizeof dir, "%s/commuter-posix.XXXXXX", base) >= (int)sizeof dir ||
		    !mkdtemp(dir) || chdir(dir) != 0) {
			fprintf(stderr, "commuter-posix-tests: cannot make a test directory under %s: %s (choose one with -d DIR)\n",
				base, strerror(errno));
			return 2;
		}
		for (s = 0; s < ct_nsets; s++) {
			for (k = 0; k < ct_sets[s].ncases; k++) {
				const struct ct_case *c = &ct_sets[s].cases[k];
				if (!ct_selected(&ct_sets[s], c, argv + optind, nsel, used))
					continue;
				memset(&ct_test, 0, sizeof ct_test);
				ct_test.id = c->id;
				if (c->not_run) {
					printf("NOT RUN %s: %s\n", c->id, c->not_run);
					not_run++;
					continue;
				}
				c->run(&ct_test);
				ct_end(&ct_test);
				if (ct_test.broken) {
					errors++;
				} else if (ct_test.mismatches) {
					failed++;
				} else {
					passed++;
					if (ct_verbose)
						printf("ok %s\n", c->id);
				}
				fflush(stdout);
			}
		}
		/* `..` of the test directory is DIR, even when DIR was given relative. */
		if (chdir("..") != 0 || rmdir(strrchr(dir, '/') + 1) != 0)
			fprintf(stderr, "commuter-posix-tests: could not remove %s: %s\n", dir,
				strerror(errno));
	}
	for (i = 0; i < nsel; i++) {
		if (!used[i]) {
			fprintf(stderr, "commuter-posix-tests: no test or call set is named `%s` (-l lists them)\n",
				argv[optind + i]);
			status = 2;
		}
	}
	free(used);
	if (list)
		return status;
	printf("%lu tests: %lu passed, %lu failed, %lu errors, %lu not run\n",
	       passed + failed + errors + not_run, passed, failed, errors, not_run);
	if (failed || errors)
		return 1;
	return status;
}
