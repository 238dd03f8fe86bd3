/*
 * http_bench_server.c - the HTTP server under measurement: static files from ROOT, nothing else
 * (no delegate, no WebSocket service), so the figures are those of the file path alone.
 *
 *   http_bench_server ROOT [--init KEY=VALUE]... [KEY=VALUE]...
 *
 * --init pairs go to oasis_initialize (event-loop-threads=1, say); the other pairs go to
 * createHttpServer after the defaults port=0 and bind-address=127.0.0.1, which they may
 * override. Prints "listening on http://ADDR:PORT" (https with cert-file-path) once it accepts
 * connections and runs until SIGINT or SIGTERM, then shuts down cleanly (so callgrind sees a
 * whole run). Used by tools/http-bench.sh and tools/http-idle-rss.sh.
 */

#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "oasis_net.h"

#define PAIRS_MAX 32

/* Splits "KEY=VALUE" in place into a pair; 0, or -1 for an argument without '='. */
static int split_pair(char *argument, OasisKeyValue *pair)
{
    char *equals = strchr(argument, '=');
    if (equals == NULL || equals == argument)
        return -1;
    *equals = '\0';
    pair->key = argument;
    pair->value = equals + 1;
    return 0;
}

static void usage(const char *program)
{
    fprintf(stderr, "usage: %s ROOT [--init KEY=VALUE]... [KEY=VALUE]...\n", program);
}

int main(int argc, char *argv[])
{
    OasisKeyValue init[PAIRS_MAX], server_pairs[PAIRS_MAX + 3];
    size_t init_count = 0, server_count = 0;
    const char *bind_address = "127.0.0.1";
    int https = 0;
    HttpServer *server;
    sigset_t stop_signals;
    int signal_number = 0;
    int32_t port;
    int i;

    if (argc < 2) {
        usage(argv[0]);
        return 2;
    }
    server_pairs[server_count].key = "port";
    server_pairs[server_count++].value = "0";
    server_pairs[server_count].key = "bind-address";
    server_pairs[server_count++].value = bind_address;
    server_pairs[server_count].key = "root-dir";
    server_pairs[server_count++].value = argv[1];
    for (i = 2; i < argc; ++i) {
        int to_init = strcmp(argv[i], "--init") == 0;
        if (to_init && ++i >= argc) {
            usage(argv[0]);
            return 2;
        }
        if ((to_init ? init_count : server_count) >= PAIRS_MAX) {
            fprintf(stderr, "%s: more than %d parameters\n", argv[0], PAIRS_MAX);
            return 2;
        }
        if (split_pair(argv[i], to_init ? &init[init_count] : &server_pairs[server_count]) != 0) {
            fprintf(stderr, "%s: not KEY=VALUE: %s\n", argv[0], argv[i]);
            return 2;
        }
        if (to_init) {
            ++init_count;
            continue;
        }
        /* A later pair wins in createHttpServer too; kept here for the printed address. */
        if (strcmp(server_pairs[server_count].key, "bind-address") == 0)
            bind_address = server_pairs[server_count].value;
        if (strcmp(server_pairs[server_count].key, "cert-file-path") == 0)
            https = 1;
        ++server_count;
    }

    /* Blocked before the library starts its threads (they inherit the mask), so the signals
     * wait for sigwait below instead of interrupting an event loop. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    if (oasis_initialize(init_count ? init : NULL, init_count) != 0) {
        fprintf(stderr, "oasis_initialize: %s\n", oasis_last_error());
        return 1;
    }
    server = createHttpServer(server_pairs, server_count, NULL, NULL);
    if (server == NULL) {
        fprintf(stderr, "createHttpServer: %s\n", oasis_last_error());
        oasis_finalize();
        return 1;
    }
    if (startHttpServer(server) != 0 || (port = httpServerPort(server)) < 0) {
        fprintf(stderr, "startHttpServer: %s\n", oasis_last_error());
        destroyHttpServer(server);
        oasis_finalize();
        return 1;
    }
    printf("listening on %s://%s:%d\n", https ? "https" : "http", bind_address, (int)port);
    fflush(stdout);

    while (sigwait(&stop_signals, &signal_number) != 0)
        continue;

    destroyHttpServer(server);
    oasis_finalize();
    return 0;
}
