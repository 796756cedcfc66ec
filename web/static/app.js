// Serendip's page. It talks only to its own node: JSON calls and an event
// stream on /api/, and one WebRTC connection over loopback (the node's
// bridge) that carries the camera and microphone to the node and the
// stranger's video and sound back. window.serendip exposes state and timings
// for tests and for people who script the page.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const el = {
    stage: $('stage'), overlayText: $('overlay-text'), remote: $('remote-video'), local: $('local-video'),
    selfOff: $('self-off'), unmute: $('unmute'), status: $('status'), online: $('online-count'),
    start: $('start'), next: $('next'), stop: $('stop'), block: $('block'),
    mic: $('mute-mic'), cam: $('mute-cam'), priv: $('private'), interests: $('interests'), startForm: $('start-form'),
    log: $('chat-log'), typing: $('typing'), shared: $('shared'),
    chatForm: $('chat-form'), input: $('chat-input'), send: $('chat-send'), notice: $('notice'),
  };

  // What the page knows, for tests and scripts.
  const S = window.serendip = {
    state: null,          // the node's latest UIState
    bridge: 'new',        // the media connection to the node: new, connecting, connected, failed, closed
    localStream: null,
    lastEnded: null,      // {by, reason, partner, connected} of the last call
    endedAt: 0,           // when the page heard of it (performance.now())
    rounds: [],           // one per Start/Next press: {action, pressedAt, matchedAt, firstFrameAt} (performance.now())
    frames: 0,            // stranger frames presented
    events: 0,            // events received from the node
    lastRound() { return this.rounds[this.rounds.length - 1] || null; },
  };

  let awaitingFrame = false; // a new stranger was matched; their first frame is still to come
  let haveVideo = false;     // the current stranger's picture is on screen

  // ---- The node's API ----------------------------------------------------

  async function api(path, body) {
    const res = await fetch('/api/' + path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: body === undefined ? '' : JSON.stringify(body),
    });
    let data = null;
    try { data = await res.json(); } catch (_) { /* no body */ }
    if (!res.ok) {
      const err = new Error((data && data.error) || res.statusText);
      err.status = res.status;
      throw err;
    }
    return data;
  }

  function notice(text) {
    el.notice.textContent = text || '';
    el.notice.hidden = !text;
  }

  function connectEvents() {
    const es = new EventSource('/api/events');
    const on = (name, fn) => es.addEventListener(name, (e) => {
      S.events++;
      try { fn(JSON.parse(e.data)); } catch (err) { console.error(name, err); }
    });
    on('state', onState);
    on('matched', onMatched);
    on('chat', onChat);
    on('typing', (t) => showTyping(t.typing));
    on('ended', onEnded);
    es.onopen = () => { if (el.notice.dataset.kind === 'node') { notice(''); delete el.notice.dataset.kind; } };
    es.onerror = () => {
      notice('Lost contact with your node; trying again…');
      el.notice.dataset.kind = 'node';
    };
  }

  // ---- Camera, microphone and the bridge -----------------------------------

  async function openCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      notice('This browser cannot use the camera here; open the page on localhost.');
      return null;
    }
    const tries = [
      { video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 30 } },
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } },
      { video: true },
      { audio: true },
    ];
    for (const c of tries) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia(c);
        if (!stream.getVideoTracks().length) notice('No camera: strangers will hear you but not see you.');
        else if (!stream.getAudioTracks().length) notice('No microphone: strangers will see you but not hear you.');
        return stream;
      } catch (_) { /* try with less */ }
    }
    notice('No camera or microphone allowed: you can still watch and chat.');
    return null;
  }

  let pc = null;
  let bridgeRetry = null;
  const remoteStream = new MediaStream();

  function retryBridge(ms) {
    clearTimeout(bridgeRetry);
    bridgeRetry = setTimeout(connectBridge, ms);
  }

  function iceGathered(conn, ms) {
    if (conn.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      conn.addEventListener('icegatheringstatechange', () => {
        if (conn.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
      });
    });
  }

  async function connectBridge() {
    clearTimeout(bridgeRetry);
    if (pc) { try { pc.close(); } catch (_) { /* already closed */ } }
    const conn = pc = new RTCPeerConnection({ iceServers: [] });
    S.bridge = 'connecting';
    const stream = S.localStream;
    for (const kind of ['video', 'audio']) {
      const track = stream && stream.getTracks().find((t) => t.kind === kind);
      if (track) conn.addTransceiver(track, { direction: 'sendrecv', streams: [stream] });
      else conn.addTransceiver(kind, { direction: 'recvonly' });
    }
    conn.ontrack = (ev) => {
      for (const t of remoteStream.getTracks()) {
        if (t.kind === ev.track.kind && t !== ev.track) remoteStream.removeTrack(t);
      }
      remoteStream.addTrack(ev.track);
      if (el.remote.srcObject !== remoteStream) el.remote.srcObject = remoteStream;
      playRemote();
    };
    conn.onconnectionstatechange = () => {
      if (conn !== pc) return;
      S.bridge = conn.connectionState;
      if (conn.connectionState === 'failed' || conn.connectionState === 'closed') retryBridge(1000);
      if (conn.connectionState === 'disconnected') {
        setTimeout(() => { if (conn === pc && conn.connectionState === 'disconnected') connectBridge(); }, 3000);
      }
    };
    try {
      await conn.setLocalDescription(await conn.createOffer());
      await iceGathered(conn, 1500);
      const answer = await api('bridge', { type: 'offer', sdp: conn.localDescription.sdp });
      if (conn !== pc) return;
      await conn.setRemoteDescription(answer);
    } catch (err) {
      if (conn !== pc) return;
      S.bridge = 'failed';
      if (err.status === 409) {
        notice('This node plays files instead of a camera: ' + err.message);
        return;
      }
      notice('Could not connect the camera to your node (' + err.message + '); retrying…');
      retryBridge(2000);
    }
  }

  function playRemote() {
    const p = el.remote.play();
    if (p && p.catch) {
      p.catch((err) => {
        if (err && err.name === 'NotAllowedError') {
          // No sound before the user has touched the page: play muted, offer sound.
          el.remote.muted = true;
          el.remote.play().catch(() => {});
          el.unmute.hidden = false;
        }
      });
    }
  }

  el.unmute.addEventListener('click', () => {
    el.remote.muted = false;
    el.unmute.hidden = true;
    playRemote();
  });

  // The stranger's frames: the first one after a match ends the wait (and
  // after a page reload mid-call, the first one shows the picture again).
  function onFrame(meta) {
    S.frames++;
    const st = S.state;
    if (!st || (st.state !== 'in_call' && st.state !== 'matched')) return;
    const r = S.lastRound();
    if (awaitingFrame) {
      // A frame received before the last call ended was the previous stranger's.
      if (meta && meta.receiveTime && S.endedAt && meta.receiveTime < S.endedAt) return;
      awaitingFrame = false;
      if (r && !r.firstFrameAt) r.firstFrameAt = performance.now();
    }
    if (!haveVideo) {
      haveVideo = true;
      render();
    }
  }

  function watchFrames() {
    const v = el.remote;
    if ('requestVideoFrameCallback' in HTMLVideoElement.prototype) {
      const cb = (_now, meta) => { onFrame(meta); v.requestVideoFrameCallback(cb); };
      v.requestVideoFrameCallback(cb);
      return;
    }
    let last = 0;
    setInterval(() => {
      const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
      if (q > last) { last = q; onFrame(null); }
    }, 50);
  }

  // ---- Events from the node ------------------------------------------------

  function onState(st) {
    const prev = S.state;
    S.state = st;
    if (st.state === 'idle' || st.state === 'searching') {
      haveVideo = false;
      awaitingFrame = false;
    }
    if (prev && prev.state === 'in_call' && st.state !== 'in_call') showTyping(false);
    render();
  }

  function onMatched(m) {
    let r = S.lastRound();
    if (!r || r.firstFrameAt) {
      // A match the user did not press for (the node searched on by itself).
      r = { action: 'auto', pressedAt: performance.now() };
      S.rounds.push(r);
    }
    r.matchedAt = performance.now();
    r.partner = m.partner;
    awaitingFrame = true;
    haveVideo = false;
    S.lastEnded = null;
    el.log.textContent = '';
    showTyping(false);
    logSystem('You are now talking to a random stranger. Say hi!');
    render();
  }

  function onChat(c) {
    if (c.from === 'stranger') showTyping(false);
    const li = document.createElement('li');
    li.className = 'msg ' + (c.from === 'you' ? 'you' : 'stranger');
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = c.from === 'you' ? 'You' : 'Stranger';
    li.append(who, document.createTextNode(c.text));
    appendLog(li);
  }

  function onEnded(e) {
    S.lastEnded = e;
    S.endedAt = performance.now();
    haveVideo = false;
    awaitingFrame = false;
    showTyping(false);
    const text = endedText(e);
    if (e.connected || e.by !== 'network') logSystem(text, e.by === 'stranger' || e.by === 'network');
    render();
  }

  function endedText(e) {
    if (e.by === 'stranger') {
      const why = { next: 'they pressed Next', stop: 'they stopped', blocked: 'they moved on' }[e.reason];
      return 'Stranger left' + (why ? ' (' + why + ').' : ' (' + e.reason + ').');
    }
    if (e.by === 'you') {
      return { next: 'You left the chat.', stop: 'You stopped.', blocked: 'You blocked this stranger. You will not meet them again.' }[e.reason] || 'You left the chat.';
    }
    if (!e.connected) return 'Could not reach that stranger; looking for another…';
    return { 'partner gone': 'The stranger\'s connection dropped.', 'media failed': 'The connection to the stranger was lost.' }[e.reason]
      || 'The call ended (' + e.reason + ').';
  }

  // ---- Rendering ---------------------------------------------------------

  function render() {
    const st = S.state;
    if (!st) return;
    const s = st.state;
    const idle = s === 'idle';
    const inCall = s === 'in_call';
    const matched = s === 'matched' || inCall;

    el.start.hidden = !idle;
    el.next.hidden = idle;
    el.stop.hidden = idle;
    el.block.disabled = !matched;
    el.input.disabled = !inCall;
    el.send.disabled = !inCall || !el.input.value.trim();
    el.interests.disabled = !idle;
    el.start.textContent = st.calls > 0 || S.lastEnded ? 'New stranger' : 'Start';

    el.priv.hidden = !st.privacy_available;
    el.priv.setAttribute('aria-pressed', st.private ? 'true' : 'false');

    const n = st.online_estimate || 1;
    el.online.textContent = '≈ ' + n + (n === 1 ? ' person' : ' people') + ' online';

    let phase, overlay, status, statusState = s;
    const ended = S.lastEnded;
    if (idle) {
      phase = 'idle';
      if (ended) {
        status = endedText(ended) + ' Press New stranger to meet someone else.';
        overlay = endedText(ended);
        statusState = 'ended';
      } else {
        status = 'Press Start to meet a stranger.';
        overlay = 'Press Start to meet someone new.';
      }
    } else if (s === 'searching') {
      phase = 'searching';
      if (st.lonely) {
        overlay = 'Nobody else is online right now. You will be connected as soon as someone arrives.';
        status = 'Nobody else is online right now; waiting for someone…';
        statusState = 'lonely';
      } else {
        overlay = 'Looking for a stranger…';
        status = 'Looking for a stranger…';
      }
      if (ended && ended.by === 'stranger') status = endedText(ended) + ' Looking for someone new…';
    } else if (s === 'matched') {
      phase = 'connecting';
      overlay = 'Stranger found. Connecting…';
      status = 'Connecting to a stranger…';
    } else {
      phase = haveVideo ? 'video' : 'connecting';
      overlay = 'Connected. Waiting for the stranger\'s video…';
      status = 'Connected to a stranger. Say hi!' + pathText(st.media && st.media.path);
    }
    if (!idle && st.bridge && S.bridge !== 'connected' && S.localStream) {
      status += ' (your camera is still connecting)';
    }
    el.stage.dataset.phase = phase;
    el.overlayText.textContent = overlay;
    el.status.textContent = status;
    el.status.dataset.state = statusState;

    const shared = matched ? (st.shared_interests || []) : [];
    el.shared.hidden = shared.length === 0;
    if (el.shared.dataset.list !== shared.join(',')) {
      el.shared.dataset.list = shared.join(',');
      el.shared.textContent = shared.length ? 'You both like ' : '';
      for (const tag of shared) {
        const chip = document.createElement('span');
        chip.className = 'chip';
        chip.textContent = tag;
        el.shared.append(chip);
      }
    }
  }

  // How the media travels, said quietly: direct, or through a relay's TURN
  // server (privacy mode, or NATs that would not let the two meet).
  function pathText(path) {
    if (!path) return '';
    return path === 'relay' ? ' · through a relay' : ' · direct';
  }

  function appendLog(li) {
    const nearBottom = el.log.scrollHeight - el.log.scrollTop - el.log.clientHeight < 60;
    el.log.append(li);
    if (nearBottom) el.log.scrollTop = el.log.scrollHeight;
  }

  function logSystem(text, left) {
    const li = document.createElement('li');
    li.className = 'system' + (left ? ' left' : '');
    li.textContent = text;
    appendLog(li);
  }

  let typingTimer = null;
  function showTyping(on) {
    clearTimeout(typingTimer);
    el.typing.hidden = !on;
    if (on) typingTimer = setTimeout(() => { el.typing.hidden = true; }, 6000);
  }

  // ---- Actions -----------------------------------------------------------

  function parseInterests(text) {
    return text.split(/[,;\n]+/).map((s) => s.trim().toLowerCase()).filter(Boolean).slice(0, 16);
  }

  function newRound(action) {
    S.rounds.push({ action, pressedAt: performance.now() });
    awaitingFrame = false;
    haveVideo = false;
  }

  async function act(fn) {
    try {
      await fn(); // the event stream brings the new state
      notice('');
    } catch (err) {
      notice(err.message);
    }
  }

  function start() {
    const interests = parseInterests(el.interests.value);
    try { localStorage.setItem('serendip.interests', el.interests.value); } catch (_) { /* private mode */ }
    newRound('start');
    S.lastEnded = null;
    el.log.textContent = '';
    playRemote(); // inside the click: the browser lets the stranger's sound play
    return act(() => api('start', { interests }));
  }

  function next() {
    if (!S.state || S.state.state === 'idle') return start();
    newRound('next');
    playRemote();
    return act(() => api('next'));
  }

  el.start.addEventListener('click', start);
  el.next.addEventListener('click', next);
  el.stop.addEventListener('click', () => act(() => api('stop')));
  el.block.addEventListener('click', () => act(() => api('block', {})));
  el.priv.addEventListener('click', () =>
    act(() => api('privacy', { private: el.priv.getAttribute('aria-pressed') !== 'true' })));
  el.startForm.addEventListener('submit', (e) => { e.preventDefault(); start(); });

  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !e.repeat) {
      e.preventDefault();
      next();
    }
  });

  function toggle(button, kind, offLabel, onLabel) {
    button.addEventListener('click', () => {
      const tracks = S.localStream ? S.localStream.getTracks().filter((t) => t.kind === kind) : [];
      if (!tracks.length) return;
      const muted = button.getAttribute('aria-pressed') !== 'true';
      for (const t of tracks) t.enabled = !muted;
      button.setAttribute('aria-pressed', String(muted));
      button.title = muted ? onLabel : offLabel;
      if (kind === 'video') el.selfOff.hidden = !muted;
    });
  }
  toggle(el.mic, 'audio', 'Mute your microphone', 'Unmute your microphone');
  toggle(el.cam, 'video', 'Turn your camera off', 'Turn your camera on');

  // Chat and the typing indicator.
  // When we last told the stranger we are typing; -Infinity: not now.
  // (Not 0: performance.now() counts from page load, and typing in the
  // first 2.5 s would never be told.)
  let typingSentAt = -Infinity;
  let typingIdle = null;
  function typing(on) {
    clearTimeout(typingIdle);
    if (on) {
      if (performance.now() - typingSentAt > 2500) {
        typingSentAt = performance.now();
        api('typing', { typing: true }).catch(() => {});
      }
      typingIdle = setTimeout(() => typing(false), 3000);
    } else if (typingSentAt > -Infinity) {
      typingSentAt = -Infinity;
      api('typing', { typing: false }).catch(() => {});
    }
  }
  el.input.addEventListener('input', () => {
    el.send.disabled = el.input.disabled || !el.input.value.trim();
    if (el.input.value) typing(true);
  });
  el.chatForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = el.input.value.trim();
    if (!text || el.input.disabled) return;
    el.input.value = '';
    el.send.disabled = true;
    clearTimeout(typingIdle);
    typingSentAt = -Infinity; // the stranger hides the indicator on our message
    try {
      await api('chat', { text });
    } catch (err) {
      el.input.value = text;
      notice('Not sent: ' + err.message);
    }
  });

  // ---- Start-up ----------------------------------------------------------

  async function init() {
    try { el.interests.value = localStorage.getItem('serendip.interests') || ''; } catch (_) { /* private mode */ }
    connectEvents();
    watchFrames();
    S.localStream = await openCamera();
    if (S.localStream) el.local.srcObject = S.localStream;
    else el.selfOff.hidden = false;
    connectBridge();
  }
  window.addEventListener('pagehide', () => { if (pc) pc.close(); });
  init();
})();
