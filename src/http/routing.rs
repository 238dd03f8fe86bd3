//! How an HTTP connection answers one complete request: routing (the filter, a WebSocket
//! service, a file, the firmware's `onRequest`, else 404), the answers themselves, and the
//! hand-over of an upgraded socket to the WebSocket layer.

use super::connection::{HttpConnection, Routed, State};
use super::files::{self, Resolved};
use super::parse::path::{CleanPath, clean_path};
use super::parse::range::{RangeAnswer, range};
use super::parse::request::RequestHead;
use super::parse::{date, mime, response};
use super::service::WsService;
use super::stream::FileStream;
use super::upstream::{Exchange, Response};
use crate::log::log;
use crate::protocol::handshake::upgrade_response_for;
use crate::runtime::Context;
use crate::ws::connection::{Connection, OpenInfo, Writer};
use crate::ws::session::Session;
use std::cell::RefCell;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Files (or ranges) up to this size are read whole and sent with their head; larger ones
/// stream in chunks.
const SMALL_FILE: u64 = 16 * 1024;

impl HttpConnection {
    /// Routes one complete request: the filter, then a WebSocket service, a file, the
    /// firmware's `onRequest`, else 404. `after` is what arrived behind the request (for an
    /// upgrade: the first frames).
    pub(super) fn route(
        &mut self,
        cx: &mut Context,
        head: &RequestHead<'_>,
        raw_head: &[u8],
        body: &[u8],
        after: &[u8],
    ) -> Routed {
        self.keep_alive = head.keep_alive;
        let is_head = head.method == "HEAD";
        if self.server.is_stopping() {
            self.keep_alive = false;
            self.fixed_answer(is_head, 503, &[("Retry-After", "1")]);
            return Routed::Answered;
        }
        if head.version == 1 && head.host.is_none() {
            log!(
                Debug,
                "http connection {}: HTTP/1.1 request without Host",
                self.id
            );
            self.error_answer(400, is_head);
            return Routed::Answered;
        }
        let (path, query) = match clean_path(head.target) {
            (
                CleanPath::Ok {
                    decoded,
                    trailing_slash,
                },
                query,
            ) => ((decoded, trailing_slash), query.unwrap_or("")),
            (CleanPath::Bad(why), _) => {
                log!(Debug, "http connection {}: 400: {why}", self.id);
                self.error_answer(400, is_head);
                return Routed::Answered;
            }
        };
        let (path, trailing_slash) = path;
        let server = self.server.clone();
        if let Some(upstream) = &server.upstream {
            let mut exchange = self.exchange(head, &path, query, body);
            let refusal = upstream.filter(&mut exchange);
            if refusal != 0 {
                if head.upgrade_websocket {
                    self.keep_alive = false;
                }
                let mut response = exchange.response;
                response.status = refusal;
                self.firmware_answer(head, response);
                return Routed::Answered;
            }
        }
        if let Some(service) = server.service(&path) {
            if head.upgrade_websocket {
                return self.upgrade(cx, head, raw_head, &service, after);
            }
            if head.method == "GET" {
                self.fixed_answer(is_head, 426, &[("Upgrade", "websocket")]);
            } else {
                self.fixed_answer(is_head, 405, &[("Allow", "GET")]);
            }
            return Routed::Answered;
        }
        if head.upgrade_websocket {
            self.keep_alive = false;
            self.fixed_answer(is_head, 404, &[]);
            return Routed::Answered;
        }
        if let Some(root) = &server.root {
            match files::resolve(root, &path, trailing_slash) {
                Resolved::File {
                    file,
                    meta,
                    path: served,
                } => {
                    if head.method != "GET" && !is_head {
                        self.fixed_answer(is_head, 405, &[("Allow", "GET, HEAD")]);
                        return Routed::Answered;
                    }
                    // The content type follows the name asked for (a link is served under
                    // the link's name); a folder's follows its index file.
                    let name = if trailing_slash {
                        served.to_string_lossy()
                    } else {
                        path.as_str().into()
                    };
                    return self.file_answer(head, file, &meta, &name);
                }
                Resolved::Redirect(location) => {
                    let location = match query {
                        "" => location,
                        query => format!("{location}?{query}"),
                    };
                    self.fixed_answer(is_head, 301, &[("Location", &location)]);
                    return Routed::Answered;
                }
                Resolved::NotFound => {}
            }
        }
        if let Some(upstream) = server.upstream.as_ref().filter(|u| u.answers_requests()) {
            let mut exchange = self.exchange(head, &path, query, body);
            upstream.request(&mut exchange);
            self.firmware_answer(head, exchange.response);
            return Routed::Answered;
        }
        self.fixed_answer(is_head, 404, &[]);
        Routed::Answered
    }

    fn exchange<'a>(
        &self,
        head: &'a RequestHead<'a>,
        path: &'a str,
        query: &'a str,
        body: &'a [u8],
    ) -> Exchange<'a> {
        Exchange {
            method: head.method,
            path,
            query,
            headers: head.headers(),
            body,
            peer: self.peer,
            response: Response::default(),
        }
    }

    /// A file: 200 (or 206 for a range), 304 when the peer's copy is current, 416 for a range
    /// past the end; the body streams from the file (HEAD: none).
    fn file_answer(
        &mut self,
        head: &RequestHead<'_>,
        file: std::fs::File,
        meta: &std::fs::Metadata,
        name: &str,
    ) -> Routed {
        let is_head = head.method == "HEAD";
        let length = meta.len();
        let modified = files::last_modified(meta);
        let last_modified = modified.to_string();
        if let Some(since) = head.header("if-modified-since")
            && !date::is_modified_since(since, modified)
        {
            self.send_head(304, &[("Last-Modified", &last_modified)], None);
            return Routed::Answered;
        }
        let wanted = match head.header("range") {
            Some(spec)
                if head
                    .header("if-range")
                    .is_none_or(|tag| date::if_range_matches(tag, modified)) =>
            {
                range(spec, length)
            }
            _ => RangeAnswer::Full,
        };
        let (status, start, count, content_range) = match wanted {
            RangeAnswer::Full => (200, 0, length, None),
            RangeAnswer::Partial {
                start,
                end_inclusive,
            } => (
                206,
                start,
                end_inclusive - start + 1,
                Some(format!("bytes {start}-{end_inclusive}/{length}")),
            ),
            RangeAnswer::Unsatisfiable => {
                let unsatisfied = format!("bytes */{length}");
                self.fixed_answer(is_head, 416, &[("Content-Range", &unsatisfied)]);
                return Routed::Answered;
            }
        };
        let mut extra = vec![
            ("Content-Type", mime::content_type(name)),
            ("Last-Modified", last_modified.as_str()),
            ("Accept-Ranges", "bytes"),
            ("X-Content-Type-Options", "nosniff"),
        ];
        if let Some(content_range) = &content_range {
            extra.push(("Content-Range", content_range.as_str()));
        }
        // A small file is read now and goes out with its head in one write: fewer system calls
        // than a stream (no sendfile and the signal mask around it). A read that fails leaves it
        // to the stream, which ends the connection if the file really changed.
        let mut small = None;
        if !is_head && count > 0 && count <= SMALL_FILE {
            let mut body = vec![0; count as usize];
            if file.read_exact_at(&mut body, start).is_ok() {
                small = Some(body);
            }
        }
        self.send_head(status, &extra, Some(count));
        if let Some(body) = small {
            self.writer.write_raw(&body);
            return Routed::Answered;
        }
        if is_head || count == 0 {
            return Routed::Answered;
        }
        Routed::Streaming(Box::new(FileStream::new(file, start, count)))
    }

    /// The firmware's answer (filter refusal or onRequest): its status, headers and body.
    fn firmware_answer(&mut self, head: &RequestHead<'_>, answer: Response) {
        let no_body = matches!(answer.status, 100..=199 | 204 | 304);
        let content_type = answer
            .content_type
            .as_deref()
            .or((!answer.body.is_empty()).then_some(mime::DEFAULT));
        let mut extra: Vec<(&str, &str)> = Vec::with_capacity(answer.headers.len() + 1);
        if let Some(content_type) = content_type.filter(|_| !no_body) {
            extra.push(("Content-Type", content_type));
        }
        extra.extend(answer.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let length = (!no_body).then_some(answer.body.len() as u64);
        self.send_head(answer.status, &extra, length);
        if head.method != "HEAD" && !no_body {
            self.writer.write_raw(&answer.body);
        }
    }

    /// A short answer of the server's own, with a text body naming the status.
    fn fixed_answer(&mut self, is_head: bool, status: u16, extra: &[(&str, &str)]) {
        let mut out = Vec::with_capacity(256);
        with_date(|date| response::error(&mut out, status, date, self.keep_alive, extra, !is_head));
        self.writer.write_raw(&out);
    }

    /// A refusal of a request that could not be read whole, or must not be answered further
    /// (400, 408, 413, 414, 431, 501, 505): the connection ends after it.
    pub(super) fn error_answer(&mut self, status: u16, is_head: bool) {
        self.keep_alive = false;
        self.fixed_answer(is_head, status, &[]);
        self.state = State::Closing(Instant::now());
    }

    fn send_head(&mut self, status: u16, extra: &[(&str, &str)], length: Option<u64>) {
        let mut out = Vec::with_capacity(256);
        with_date(|date| response::head(&mut out, status, date, length, self.keep_alive, extra));
        self.writer.write_raw(&out);
    }

    /// A WebSocket service answers the upgrade. Accepted: the 101 goes out (behind the
    /// answers to earlier pipelined requests, in the same send buffer), and the socket, with
    /// the frames that came behind the request, moves to the WebSocket layer on this loop,
    /// under this connection's id. Refused: the handshake's answer, then the connection ends.
    fn upgrade(
        &mut self,
        cx: &mut Context,
        head: &RequestHead<'_>,
        raw_head: &[u8],
        service: &Arc<WsService>,
        after: &[u8],
    ) -> Routed {
        let answer = upgrade_response_for(
            head.method,
            head.version,
            head.headers(),
            &service.common.settings.protocols,
        );
        let (response, protocol) = match answer {
            Ok(accepted) => accepted,
            Err(refused) => {
                log!(
                    Debug,
                    "http connection {}: upgrade refused: {}",
                    self.id,
                    refused.reason
                );
                self.keep_alive = false;
                self.writer.write_raw(&refused.response);
                self.state = State::Closing(Instant::now());
                return Routed::Answered;
            }
        };
        let mut writer = std::mem::replace(&mut self.writer, Writer::new(None));
        writer.corked = false;
        writer.write_raw(&response);
        if let Some(transport) = writer.transport.as_mut()
            && let Err(err) = transport.deregister(cx.registry)
        {
            log!(
                Warn,
                "http connection {}: cannot hand the socket over: {err}",
                self.id
            );
            return Routed::HandedOver;
        }
        let connection = Connection::with_writer(self.id, service.common.on(cx.event_loop), writer);
        connection.set_peer_address(self.peer);
        connection.set_opened(OpenInfo::new(
            protocol.as_deref(),
            head.target,
            Some(raw_head),
        ));
        service.common.group.join();
        let session = Session::upgraded(connection.clone(), after.to_vec(), self.admission.take());
        // Adopted in this same turn, once this task (and its registration) is gone.
        cx.place(cx.event_loop, self.id, session);
        // A stop that began meanwhile may have closed the group before this connection joined
        // it (the flag is set before the group is closed, so one of the two sees the other).
        // Closed after the session is queued, so that the close's timer reaches the session.
        if self.server.is_stopping() {
            let _ = connection.close_for_stop(1001, "server stopping");
        }
        Routed::HandedOver
    }
}

thread_local! {
    /// The `Date` header's text, made once per second per thread.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

pub(crate) fn with_date<R>(f: impl FnOnce(&str) -> R) -> R {
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    DATE.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            *cached = (second, files::http_date(now).to_string());
        }
        f(&cached.1)
    })
}
