/* child.h - runs a piece of a test in a child process, so that a sanitizer
 * report or a crash there fails that test instead of the whole program.
 * Header-only, for the unit tests. */
#ifndef MYNA_TEST_CHILD_H
#define MYNA_TEST_CHILD_H

#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static inline void assert_child_ok(void (*fn)(void))
{
    int status;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn();
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("child failed (status 0x%x): see its report above", status);
}

#endif
