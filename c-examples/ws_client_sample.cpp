// The Oasis SDK client sample as documented, with the strpcy typo fixed and without its TLS lines:
// the plain ws:// form. wss_client_sample.cpp is the documented sample with its TLS lines.
// Built with -Wno-unused-variable -Wno-unused-parameter -Wno-unused-but-set-variable: the unused names are the SDK's.
#include "OasisAPI.h"
#include "OasisLog.h"
#include "OasisWeb.h"
#include <thread>
#include <mutex>
#include <memory>
#include <condition_variable>
#define DLOG_THIS 0x00080000
#undef DLOG_FLAGS
#define DLOG_FLAGS (DLOG_FLAGS_DEFAULT|DLOG_THIS/**/)
#undef DLOG_TAG
#define DLOG_TAG "WSC"
using namespace oasis;
static TTYRaw tty_;
static bool continuing = true;
static bool ws_closed = false;
//for WebSocket upstream
class MyWsEventDelegate : public WsEventDelegate
{
public:
MyWsEventDelegate() {}
virtual ~MyWsEventDelegate() {}
public:
virtual void onOpen(const WsEventRef &evt) {
DLOG(DLOG_THIS, "Open\n");
}
virtual void onMessage(const WsEventRef &evt) {
DLOG(DLOG_VERBOSE, "Message\n");
if(wsEventMessageType(evt) == kWsMessageText) {
std::string str;
wsEventText(evt, str);
DLOG0(DLOG_THIS, "==> %s\n", str.c_str());
}
}
virtual void onError(const WsEventRef &evt) {
DLOG(DLOG_THIS, "Error: %d\n", wsEventStatusCode(evt));
}
virtual void onClose(const WsEventRef &evt) {
DLOG(DLOG_THIS, "Close: %d\n", wsEventStatusCode(evt));
ws_closed = true;
}
};
void cancel_handler(int signum)
{
continuing = false;
}
int main(int argc, char* argv[])
{
int32_t err;
int32_t status_code;
std::string reason_string;
std::string content_type;
int32_t wait_count = 0;
key_value_map_t parameters, fields;
std::string url = "wss://echo.websocket.org/";
if(argc >= 2) {
url = argv[1];
}
signal(SIGINT, cancel_handler);
parameters["offs-disable"] = "1";
if(oasis::initialize(parameters) < 0) {
DLOG(DLOG_ERROR, "Oasis init failed\n");
return -1;
}
parameters.clear();
//websocket-protocols
parameters["websocket-fragment-size-max"] = std::to_string(8192);
WsConnectionRef conn;
char buffer[512];
std::shared_ptr<MyWsEventDelegate> delegate = std::make_shared<MyWsEventDelegate>();
conn = wsOpenConnection(url.c_str(), parameters, delegate, 10000);
if(conn) {
DLOG(DLOG_THIS, "connected.\n");
strcpy(buffer, "hello, world!");
wsSendText(conn, (const char*)buffer);
DLOG(DLOG_THIS, "closing...\n");
wsCloseConnection(conn);
//need sometime to be closed.
int32_t max_wait = 20; //2 seconds
do {
usleep(10000);
} while(ws_closed == false && max_wait-- > 0);
}
conn = nullptr;
oasis::finalize();
return 0;
}
