/*
 * OasisLog.h - the Oasis SDK's DLOG macros, for C99 and C++.
 *
 * A program picks the flags it wants printed and its tag by redefining DLOG_FLAGS and DLOG_TAG
 * after including this header; the macros read both where they are expanded, not here.
 *
 *   #define DLOG_THIS 0x00080000
 *   #undef DLOG_FLAGS
 *   #define DLOG_FLAGS (DLOG_FLAGS_DEFAULT|DLOG_THIS)
 *   #undef DLOG_TAG
 *   #define DLOG_TAG "WSS"
 *   DLOG(DLOG_THIS, "value %d\n", v);     prints "[WSS] value 7"
 *   DLOG0(DLOG_THIS, "value %d\n", v);    prints "value 7"
 *
 * Where the lines go: DLOG_ERROR and DLOG_WARN lines go through the library's logger
 * (oasis_log_message), so they reach stderr or the firmware's hook like the library's own
 * messages. Every other flag prints to stdout directly, as the original SDK does: the logger's
 * default level is WARN, so routing informational lines through it would silently drop them.
 *
 * When they go out: stdout keeps stdio's own buffering. On a terminal that is a line at a time;
 * to a file or a pipe the lines go out in blocks, so that a line costs no write(2) of its own (a
 * tenth of the CPU of a flushed line: figures in docs/BENCHMARKS.md). What waits is written when
 * the program ends through exit() or a return from main; a process killed by a signal, ended
 * with _exit() or crashing loses it. A program whose log must be out line by line, also through
 * a pipe, calls setvbuf(stdout, NULL, _IOLBF, 0) before its first line (or is run under
 * `stdbuf -oL`); fflush(stdout) pushes out what waits at any time.
 */

#ifndef OASIS_LOG_H
#define OASIS_LOG_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oasis_net.h"

#define DLOG_ERROR   0x00000001
#define DLOG_WARN    0x00000002
#define DLOG_INFO    0x00000004
#define DLOG_DEBUG   0x00000008
#define DLOG_VERBOSE 0x00000010

#define DLOG_FLAGS_DEFAULT (DLOG_ERROR | DLOG_WARN | DLOG_INFO)

#ifndef DLOG_FLAGS
#define DLOG_FLAGS DLOG_FLAGS_DEFAULT
#endif

#ifndef DLOG_TAG
#define DLOG_TAG "OASIS"
#endif

/* The test comes first so that disabled lines cost neither the formatting nor the arguments.
 * The format string is the first of __VA_ARGS__, which keeps the macros free of ##__VA_ARGS__. */
#define DLOG(flags, ...) \
    do { \
        if (((unsigned int)(flags) & (unsigned int)(DLOG_FLAGS)) != 0u) \
            oasis_dlog_((unsigned int)(flags), DLOG_TAG, 1, __VA_ARGS__); \
    } while (0)

#define DLOG0(flags, ...) \
    do { \
        if (((unsigned int)(flags) & (unsigned int)(DLOG_FLAGS)) != 0u) \
            oasis_dlog_((unsigned int)(flags), DLOG_TAG, 0, __VA_ARGS__); \
    } while (0)

#if defined(__GNUC__)
#define OASIS_DLOG_PRINTF_(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define OASIS_DLOG_PRINTF_(fmt_index, first_arg)
#endif

static inline void oasis_dlog_(unsigned int flags, const char *tag, int with_tag, const char *format, ...)
    OASIS_DLOG_PRINTF_(4, 5);

static inline void oasis_dlog_(unsigned int flags, const char *tag, int with_tag, const char *format, ...)
{
    char stack_buffer[512];
    char *line = stack_buffer;
    va_list args;
    int length;

    va_start(args, format);
    length = vsnprintf(stack_buffer, sizeof stack_buffer, format, args);
    va_end(args);
    if (length < 0)
        return;
    if ((size_t)length >= sizeof stack_buffer) {
        line = (char *)malloc((size_t)length + 1);
        if (line == NULL) {
            line = stack_buffer; /* print the truncated line rather than nothing */
        } else {
            va_start(args, format);
            vsnprintf(line, (size_t)length + 1, format, args);
            va_end(args);
        }
    }

    if (flags & (DLOG_ERROR | DLOG_WARN)) {
        int level = (flags & DLOG_ERROR) ? OASIS_LOG_ERROR : OASIS_LOG_WARN;
        oasis_log_message(level, with_tag ? tag : NULL, line);
    } else {
        /* One printf call per line keeps lines from different threads whole. No fflush: see
         * "When they go out" above. */
        if (with_tag)
            printf("[%s] %s", tag, line);
        else
            fputs(line, stdout);
    }

    if (line != stack_buffer)
        free(line);
}

#endif /* OASIS_LOG_H */
