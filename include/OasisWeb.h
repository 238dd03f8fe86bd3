/*
 * OasisWeb.h - the Oasis SDK HTTP server API.
 *
 * Only the WebSocket part exists so far, and it lives in OasisNet.h. The HTTP server
 * (createHttpServer, startHttpServer, stopHttpServer, destroyHttpServer, createHttpWsService)
 * comes with a later issue; this header is here so that the SDK samples, which include it,
 * compile unchanged.
 */

#ifndef OASIS_WEB_H
#define OASIS_WEB_H

#include "OasisNet.h"

#endif /* OASIS_WEB_H */
