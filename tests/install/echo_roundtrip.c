/*
 * echo_roundtrip.c - a program built against an installed liboasisnet (make install), the way a
 * firmware project would: only the installed headers and libraries, found through pkg-config or
 * CMake. tests/scripts/install-check.sh builds it shared and static and runs it.
 *
 * It starts a WebSocket echo server on 127.0.0.1 (a port the kernel picks), connects a client to
 * it, sends one text message, waits for the echo, closes and shuts everything down. Prints
 * "echo round trip ok: TEXT" and exits 0; on any failure prints what failed and exits 1. Every
 * wait has a deadline.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <time.h>

#include "OasisAPI.h"

#define WAIT_SECONDS 10
#define MESSAGE "hello over the installed liboasisnet"

struct client_state {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int closed;
    int errored;
    char echo[128];
    int echo_length; /* -1 until the echo arrived */
};

static struct client_state client = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, "", -1};

static void server_on_message(void *user, WsEvent *event)
{
    const uint8_t *data = NULL;
    int32_t length = wsEventData(event, &data);

    (void)user;
    if (wsEventMessageType(event) == kWsMessageText && length >= 0)
        wsSendTextLength(wsEventConnection(event), (const char *)data, (size_t)length);
}

static void client_on_message(void *user, WsEvent *event)
{
    struct client_state *state = user;

    pthread_mutex_lock(&state->lock);
    state->echo_length = wsEventText(event, state->echo, sizeof state->echo);
    pthread_cond_broadcast(&state->changed);
    pthread_mutex_unlock(&state->lock);
}

static void client_on_end(struct client_state *state, int *flag)
{
    pthread_mutex_lock(&state->lock);
    *flag = 1;
    pthread_cond_broadcast(&state->changed);
    pthread_mutex_unlock(&state->lock);
}

static void client_on_close(void *user, WsEvent *event)
{
    struct client_state *state = user;

    (void)event;
    client_on_end(state, &state->closed);
}

static void client_on_error(void *user, WsEvent *event)
{
    struct client_state *state = user;

    fprintf(stderr, "client error event, status %d\n", (int)wsEventStatusCode(event));
    client_on_end(state, &state->errored);
}

/* Waits until *flag is non-zero (or the echo arrived, for flag NULL); 0, or -1 after the deadline. */
static int wait_for(const int *flag)
{
    struct timespec deadline;
    int rc = 0;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_SECONDS;
    pthread_mutex_lock(&client.lock);
    while (rc != ETIMEDOUT && !client.errored && (flag != NULL ? !*flag : client.echo_length < 0))
        rc = pthread_cond_timedwait(&client.changed, &client.lock, &deadline);
    rc = flag != NULL ? *flag : client.echo_length >= 0;
    pthread_mutex_unlock(&client.lock);
    return rc ? 0 : -1;
}

int main(void)
{
    OasisKeyValue parameters[2] = {{"port", "0"}, {"bind-address", "127.0.0.1"}};
    WsEventDelegateVTable server_delegate, client_delegate;
    WsServer *server;
    WsConnection *connection;
    char url[64];
    int32_t port;
    int ok = 1;

    if (oasis_initialize(NULL, 0) != 0) {
        fprintf(stderr, "oasis_initialize: %s\n", oasis_last_error());
        return 1;
    }

    memset(&server_delegate, 0, sizeof server_delegate);
    server_delegate.struct_size = sizeof server_delegate;
    server_delegate.onMessage = server_on_message;
    server = createWsServer(parameters, 2, &server_delegate, NULL);
    if (server == NULL || startWsServer(server) != 0 || (port = wsServerPort(server)) <= 0) {
        fprintf(stderr, "server: %s\n", oasis_last_error());
        destroyWsServer(server);
        oasis_finalize();
        return 1;
    }

    memset(&client_delegate, 0, sizeof client_delegate);
    client_delegate.struct_size = sizeof client_delegate;
    client_delegate.onMessage = client_on_message;
    client_delegate.onClose = client_on_close;
    client_delegate.onError = client_on_error;
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", (int)port);
    /* Blocking open: returns once the connection is open (onOpen has run). */
    connection = wsOpenConnection(url, NULL, 0, &client_delegate, &client, 5000);
    if (connection == NULL) {
        fprintf(stderr, "wsOpenConnection %s: %s\n", url, oasis_last_error());
        ok = 0;
    } else if (wsSendText(connection, MESSAGE) != 0) {
        fprintf(stderr, "wsSendText: %s\n", oasis_last_error());
        ok = 0;
    } else if (wait_for(NULL) != 0) {
        fprintf(stderr, "no echo within %d s\n", WAIT_SECONDS);
        ok = 0;
    } else if (client.echo_length != (int)strlen(MESSAGE) || strcmp(client.echo, MESSAGE) != 0) {
        fprintf(stderr, "echo \"%s\" (length %d) is not \"%s\"\n", client.echo, client.echo_length, MESSAGE);
        ok = 0;
    }

    if (connection != NULL) {
        if (wsCloseConnection(connection) != 0 || wait_for(&client.closed) != 0) {
            fprintf(stderr, "the connection did not close cleanly within %d s\n", WAIT_SECONDS);
            ok = 0;
        }
        wsConnectionRelease(connection);
    }
    destroyWsServer(server);
    if (oasis_finalize() != 0) {
        fprintf(stderr, "oasis_finalize: %s\n", oasis_last_error());
        ok = 0;
    }
    if (!ok)
        return 1;
    printf("echo round trip ok: %s\n", client.echo);
    return 0;
}
