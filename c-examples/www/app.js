// Demo page: a WebSocket to /ws; the device pushes "status k=v ..." each second and answers
// "echo: <text>". ?selftest=NONCE runs the check that tests/browser/cdp_check.py reads.
'use strict';
(function () {
  var $ = function (id) { return document.getElementById(id); };
  var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
  var nonce = new URLSearchParams(location.search).get('selftest');
  var ws = null, KEEP = 50;
  var st = nonce === null ? null
    : { done: false, ok: false, statusSeen: 0, echo: null, errors: [] };
  if (st) window.selftest = st;
  $('url').textContent = url;

  function state(cls, text) {
    $('conn').className = 'conn ' + cls;
    $('state').textContent = text;
    $('send').disabled = cls !== 'open';
    $('status').className = cls === 'open' ? '' : 'stale';
  }

  function log(cls, text) {
    var li = document.createElement('li'), t = document.createElement('time');
    li.className = cls;
    t.textContent = new Date().toLocaleTimeString([], { hour12: false });
    li.appendChild(t);
    li.appendChild(document.createTextNode(text));
    var ol = $('log');
    ol.insertBefore(li, ol.firstChild);
    while (ol.children.length > KEEP) ol.removeChild(ol.lastChild);
  }

  // "status uptime=12s clients=2 time=..." -> the status panel; null if it is not a status line.
  function status(text) {
    var f = {}, dl = $('status');
    text.split(' ').slice(1).forEach(function (kv) {
      var i = kv.indexOf('=');
      if (i > 0) f[kv.slice(0, i)] = kv.slice(i + 1);
    });
    if (!('uptime' in f && 'clients' in f)) return null;
    dl.textContent = '';
    [['Uptime', f.uptime], ['Clients', f.clients], ['Device time', f.time || '?']]
      .forEach(function (p) {
        var dt = document.createElement('dt'), dd = document.createElement('dd');
        dt.textContent = p[0]; dd.textContent = p[1];
        dl.appendChild(dt); dl.appendChild(dd);
      });
    return f;
  }

  function finish(ok, why) {
    if (!st || st.done) return;
    if (why) st.errors.push(why);
    st.ok = ok;
    st.done = true;
    document.title = ok ? 'PASS' : 'FAIL: ' + why;
    var p = $('result');
    p.hidden = false;
    p.className = ok ? 'pass' : 'fail';
    p.textContent = 'Self-test ' + (ok ? 'passed' : 'failed: ' + why);
  }

  function selftest(text) {
    var hello = 'hello from the browser ' + nonce;
    if (text.indexOf('status ') === 0 && ++st.statusSeen === 2) {
      $('text').value = hello;
      $('form').requestSubmit();  // through the form, as a user would
    } else if (text.indexOf('echo: ') === 0) {
      st.echo = text;
      if (text === 'echo: ' + hello) finish(true);
      else finish(false, 'unexpected echo: ' + text);
    }
  }

  function connect() {
    state('connecting', 'connecting');
    ws = new WebSocket(url);
    ws.onopen = function () { state('open', 'connected'); log('event', 'connected to ' + url); };
    ws.onmessage = function (e) {
      var text = String(e.data);
      if (text.indexOf('status ') === 0) {
        if (!status(text) && st) finish(false, 'bad status line: ' + text);
      } else if (text.indexOf('echo: ') === 0) {
        log('echo', '\u21a9 ' + text.slice(6));
      } else {
        log('in', text);
      }
      if (st && !st.done) selftest(text);
    };
    ws.onerror = function () { if (st) st.errors.push('WebSocket error'); };
    ws.onclose = function (e) {
      state('closed', 'disconnected');
      log('event', 'disconnected (code ' + e.code + ')' + (st ? '' : '; retrying in 1 s'));
      if (st) finish(false, 'WebSocket closed with code ' + e.code);
      else setTimeout(connect, 1000);
    };
  }

  $('form').addEventListener('submit', function (e) {
    e.preventDefault();
    var text = $('text').value;
    if (!text || !ws || ws.readyState !== WebSocket.OPEN) return;
    ws.send(text);
    log('out', '\u2192 ' + text);
    $('text').value = '';
  });

  if (st) {
    window.addEventListener('error', function (e) { finish(false, 'script error: ' + e.message); });
    setTimeout(function () {
      finish(false, 'timed out after 15 s (' + st.statusSeen + ' status pushes, echo ' +
        (st.echo === null ? 'none' : JSON.stringify(st.echo)) + ')');
    }, 15000);
  }
  connect();
})();
