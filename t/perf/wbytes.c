/* wbytes.c: runs a command and writes to a file how many bytes it dirtied for writing (its /proc/PID/io write_bytes, threads and children included). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * The kernel reports write_bytes, once the process is reaped, as
 * ru_oublock in 512-byte units. Bytes shared by reflink or written by
 * another process (the journal) are not in it: what the command itself
 * made the file system write.
 */
int main(int argc, char **argv)
{
	struct rusage ru;
	int status;
	pid_t pid;
	FILE *f;

	if (argc < 3) {
		fprintf(stderr, "usage: wbytes FILE COMMAND [ARG...]\n");
		return 2;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "wbytes: cannot fork: %s\n", strerror(errno));
		return 127;
	}
	if (pid == 0) {
		execvp(argv[2], argv + 2);
		fprintf(stderr, "wbytes: cannot run '%s': %s\n", argv[2], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR) {
			fprintf(stderr, "wbytes: wait failed: %s\n", strerror(errno));
			return 127;
		}
	f = fopen(argv[1], "w");
	if (f) {
		fprintf(f, "%lld\n", (long long)ru.ru_oublock * 512);
		fclose(f);
	}
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
