// The Oasis SDK server sample (secure WebSocket) exactly as documented, except: the certificate
// directory is the macro CERT_DIR (default "/data/certs", the document's), and USE_RSA/USE_ECDSA/
// USE_DSS can be set from the command line (-DUSE_RSA=0 -DUSE_ECDSA=1).
// Built with -Wno-unused-variable -Wno-unused-parameter -Wno-unused-but-set-variable: the unused names are the SDK's.
#ifndef CERT_DIR
#define CERT_DIR "/data/certs"
#endif
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
#define DLOG_TAG "WSS"
#ifndef USE_RSA
#define USE_RSA 1
#define USE_ECDSA 0
#define USE_DSS 0
#endif
using namespace oasis;
static bool continuing = true;
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
DLOG(DLOG_THIS, "Message\n");
if(wsEventMessageType(evt) == kWsMessageText) {
std::vector<uint8_t> data;
if(wsEventData(evt, data) > 0) {
std::string str(data.data(), data.data()+data.size());
wsSendText(evt, str.c_str());
}
}
}
virtual void onError(const WsEventRef &evt) {
DLOG(DLOG_THIS, "Error\n");
}
virtual void onClose(const WsEventRef &evt) {
DLOG(DLOG_THIS, "Close\n");
}
};
void cancel_handler(int signum)
{
continuing = false;
}
int main(int argc, char* argv[])
{
int32_t c, err;
uint16_t port;
std::thread t3;
key_value_map_t parameters, fields;
if(argc < 2) {
printf("USAGE: %s <port number>\n", argv[0]);
return 255;
}
port = (uint16_t)atoi(argv[1]);
if(port == 0) {
printf("USAGE: %s <port number>\n", argv[0]);
return 255;
}
signal(SIGINT, cancel_handler);
parameters["offs-disable"] = "1";
if(oasis::initialize(parameters) < 0) {
DLOG(DLOG_ERROR, "Oasis init failed\n");
return -1;
}
parameters.clear();
parameters["port"] = std::to_string(port);
parameters["ca-certs-file-path"] = CERT_DIR "/RootCA.pem";
#if USE_RSA
parameters["cert-file-path"] = CERT_DIR "/fullchain.pem";
parameters["pkey-file-path"] = CERT_DIR "/privkey.pem";
#elif USE_ECDSA
parameters["cert-file-path"] = CERT_DIR "/ec_fullchain.pem";
parameters["pkey-file-path"] = CERT_DIR "/ec_pkey.pem";
#elif USE_DSS
parameters["cert-file-path"] = CERT_DIR "/dsa_fullchain.pem";
parameters["pkey-file-path"] = CERT_DIR "/dsa_pkey.pem";
#else
#error "No certficates!"
#endif
std::shared_ptr<MyWsEventDelegate> delegate = std::make_shared<MyWsEventDelegate>();
WsServerRef server = createWsServer(parameters, delegate);
if(!server) {
DLOG(DLOG_ERROR, "failed to create a websocket server\n");
return -1;
}
if(startWsServer(server) < 0) {
DLOG(DLOG_ERROR, "start failed\n");
goto done;
}
do {
usleep(10000);
} while (continuing);
stopWsServer(server);
done:
destroyWsServer(server);
oasis::finalize();
return 0;
}
