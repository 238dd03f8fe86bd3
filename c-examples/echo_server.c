/*
 * echo_server.c - a WebSocket echo server over the C API of liboasisnet.
 *
 *   echo_server PORT [BIND-ADDRESS [CERT-FILE KEY-FILE]]
 *
 * Text comes back as text, binary as binary. Prints "listening on ws://ADDR:PORT" once it
 * accepts connections (PORT 0 picks a free port) and runs until SIGINT or SIGTERM. With a
 * certificate chain and its private key (PEM files: cert-file-path, pkey-file-path) it serves
 * secure WebSocket only and prints "listening on wss://ADDR:PORT".
 * The benchmark and `make demo` use it, so the message path stays minimal: the reply is sent
 * straight from the event's own bytes, without a copy of ours. ECHO_EVENT_LOOP_THREADS=N in
 * the environment sets the library's event-loop-threads (tools/scale.sh measures 1 and 2).
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oasis_net.h"

static void on_message(void *user, WsEvent *event)
{
    const uint8_t *data = NULL;
    int32_t length;
    ws_message_t type = wsEventMessageType(event);

    (void)user;
    if (type != kWsMessageText && type != kWsMessageBinary)
        return;
    length = wsEventData(event, &data);
    if (length < 0)
        return;
    /* A failed echo means the peer is gone or not reading; the library logs it and the
     * connection's own close or timeout ends it, so there is nothing to add here. */
    if (type == kWsMessageText)
        wsSendTextLength(wsEventConnection(event), (const char *)data, (size_t)length);
    else
        wsSendBinary(wsEventConnection(event), data, (size_t)length);
}

int main(int argc, char *argv[])
{
    const char *bind_address = argc >= 3 ? argv[2] : "0.0.0.0";
    const char *scheme = argc == 5 ? "wss" : "ws";
    WsEventDelegateVTable delegate;
    OasisKeyValue parameters[4];
    OasisKeyValue loop_threads;
    size_t parameter_count = 2;
    WsServer *server;
    sigset_t stop_signals;
    int signal_number = 0;
    int32_t port;

    if (argc < 2 || argc > 5 || argc == 4) {
        fprintf(stderr, "usage: %s PORT [BIND-ADDRESS [CERT-FILE KEY-FILE]]\n", argv[0]);
        return 2;
    }

    /* Blocked before the library starts its threads (they inherit the mask), so the signals
     * wait for sigwait below instead of interrupting an event loop. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    loop_threads.key = "event-loop-threads";
    loop_threads.value = getenv("ECHO_EVENT_LOOP_THREADS");
    if (oasis_initialize(&loop_threads, loop_threads.value != NULL ? 1 : 0) != 0) {
        fprintf(stderr, "oasis_initialize: %s\n", oasis_last_error());
        return 1;
    }

    memset(&delegate, 0, sizeof delegate);
    delegate.struct_size = sizeof delegate;
    delegate.onMessage = on_message;
    parameters[0].key = "port";
    parameters[0].value = argv[1];
    parameters[1].key = "bind-address";
    parameters[1].value = bind_address;
    if (argc == 5) {
        parameters[2].key = "cert-file-path";
        parameters[2].value = argv[3];
        parameters[3].key = "pkey-file-path";
        parameters[3].value = argv[4];
        parameter_count = 4;
    }

    server = createWsServer(parameters, parameter_count, &delegate, NULL);
    if (server == NULL) {
        fprintf(stderr, "createWsServer: %s\n", oasis_last_error());
        oasis_finalize();
        return 1;
    }
    if (startWsServer(server) != 0 || (port = wsServerPort(server)) < 0) {
        fprintf(stderr, "startWsServer: %s\n", oasis_last_error());
        destroyWsServer(server);
        oasis_finalize();
        return 1;
    }

    if (strchr(bind_address, ':') != NULL)
        printf("listening on %s://[%s]:%d\n", scheme, bind_address, (int)port);
    else
        printf("listening on %s://%s:%d\n", scheme, bind_address, (int)port);
    fflush(stdout);

    while (sigwait(&stop_signals, &signal_number) != 0)
        continue;

    stopWsServer(server);
    destroyWsServer(server);
    oasis_finalize();
    return 0;
}
