/*
 * OasisAPI.h - library start/stop and small helpers of the Oasis SDK.
 *
 * The SDK samples use printf, atoi, signal, usleep, strcpy, std::thread, std::to_string and
 * friends with this header as their only system include, so it pulls all of those in.
 */

#ifndef OASIS_API_H
#define OASIS_API_H

#include "OasisNet.h"

#include <unistd.h>

#ifndef __cplusplus

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#else

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <poll.h>
#include <termios.h>

namespace oasis {

// Starts the library (keys: event-loop-threads, log-level, offs-disable). 0, or -1 with errno.
inline int32_t initialize(key_value_map_t &parameters)
{
    detail::KeyValueArray pairs(parameters);
    return ::oasis_initialize(pairs.data(), pairs.size());
}

// Stops every server and connection and joins the event-loop threads.
inline void finalize()
{
    ::oasis_finalize();
}

// Single-key input from a terminal. Constructing one changes nothing (the SDK samples keep one
// in a static that they never use); enable() switches stdin to unbuffered, no-echo input when
// it is a terminal, and the destructor puts the terminal back.
class TTYRaw
{
public:
    TTYRaw() : enabled_(false) { std::memset(&saved_, 0, sizeof saved_); }
    ~TTYRaw() { disable(); }

    // false when stdin is not a terminal or cannot be switched.
    bool enable()
    {
        if (enabled_)
            return true;
        if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_) != 0)
            return false;
        struct termios raw = saved_;
        // ISIG stays on so that Ctrl-C still reaches the program's SIGINT handler.
        raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) != 0)
            return false;
        enabled_ = true;
        return true;
    }

    void disable()
    {
        if (enabled_) {
            tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
            enabled_ = false;
        }
    }

    bool enabled() const { return enabled_; }

    // The next byte from stdin, or -1 after timeout_msec (negative: wait for ever) or at EOF.
    int getch(int timeout_msec)
    {
        struct pollfd pfd;
        pfd.fd = STDIN_FILENO;
        pfd.events = POLLIN;
        pfd.revents = 0;
        if (poll(&pfd, 1, timeout_msec) <= 0)
            return -1;
        unsigned char c;
        if (read(STDIN_FILENO, &c, 1) != 1)
            return -1;
        return c;
    }

private:
    TTYRaw(const TTYRaw &);
    TTYRaw &operator=(const TTYRaw &);

    bool enabled_;
    struct termios saved_;
};

} // namespace oasis

#endif // __cplusplus

#endif /* OASIS_API_H */
