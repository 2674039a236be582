/* maxrss.c: runs a command and writes its peak RSS in KiB to a file (fallback for GNU time -f %M), and with -w the bytes it dirtied. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct rusage ru;
	int status;
	pid_t pid;
	FILE *f;

	const char *wfile = NULL;

	/* -w WFILE: the bytes the command dirtied for writing (its
	 * /proc/PID/io write_bytes, threads and reaped children included,
	 * which the kernel reports as ru_oublock in 512-byte units). Bytes
	 * shared by reflink or written by other processes (the journal) are
	 * not in it. */
	if (argc > 2 && !strcmp(argv[1], "-w")) {
		wfile = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: maxrss [-w WFILE] FILE COMMAND [ARG...]\n");
		return 2;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "maxrss: cannot fork: %s\n", strerror(errno));
		return 127;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "maxrss: cannot run '%s': %s\n", argv[2], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "maxrss: wait failed: %s\n", strerror(errno));
			return 127;
		}
	f = fopen(argv[1], "w");
	if (f) {
		fprintf(f, "%ld\n", ru.ru_maxrss);
		fclose(f);
	}
	f = wfile ? fopen(wfile, "w") : NULL;
	if (f) {
		fprintf(f, "%lld\n", (long long)ru.ru_oublock * 512);
		fclose(f);
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
