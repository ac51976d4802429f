// The stage page: the stream over WebRTC, for an OBS Browser Source or any tab. Reconnects by itself.
// window.stageStats exposes what arrived (video frames, audio samples) for tests and measurements.
"use strict";

const video = document.getElementById("stage");
const note = document.getElementById("note");
const unmute = document.getElementById("unmute");
window.stageStats = { frames: 0, audioSamples: 0, connected: false, connections: 0 };
let pc = null;

function countFrames() {
  if ("requestVideoFrameCallback" in video) {
    const tick = () => { window.stageStats.frames++; video.requestVideoFrameCallback(tick); };
    video.requestVideoFrameCallback(tick);
  }
}

async function connect() {
  pc = new RTCPeerConnection({ iceServers: [] });
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.ontrack = (e) => { stream.addTrack(e.track); video.srcObject = stream; play(); };
  const closed = new Promise((done) => {
    pc.onconnectionstatechange = () => {
      const state = pc.connectionState;
      window.stageStats.connected = state === "connected";
      if (state === "connected") { note.textContent = ""; window.stageStats.connections++; }
      if (["failed", "closed", "disconnected"].includes(state)) done();
    };
  });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((ok) => {
    if (pc.iceGatheringState === "complete") return ok();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && ok();
  });
  const r = await fetch("/stage/offer", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer" }) });
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || `HTTP ${r.status}`);
  await pc.setRemoteDescription(await r.json());
  await closed;
}

async function play() {
  try { await video.play(); unmute.hidden = true; }
  catch (e) { video.muted = true; video.play(); unmute.hidden = false; }  // autoplay with sound needs a click
}
unmute.addEventListener("click", () => { video.muted = false; play(); });

async function pollStats() {
  for (;;) {
    await new Promise((ok) => setTimeout(ok, 500));
    if (!pc) continue;
    try {
      (await pc.getStats()).forEach((r) => {
        if (r.type === "inbound-rtp" && r.kind === "audio") window.stageStats.audioSamples = r.totalSamplesReceived || 0;
        if (r.type === "inbound-rtp" && r.kind === "video" && !("requestVideoFrameCallback" in video)) window.stageStats.frames = r.framesDecoded || 0;
      });
    } catch (e) { /* the connection is being replaced */ }
  }
}

async function run() {
  let delay = 1000;
  for (;;) {
    try {
      await connect();
      delay = 1000;
    } catch (e) {
      note.textContent = `stage unavailable 舞台不可用: ${e.message}; retrying…`;
    }
    if (pc) pc.close();
    pc = null;
    note.textContent = note.textContent || "reconnecting 重新连接…";
    await new Promise((ok) => setTimeout(ok, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

countFrames();
pollStats();
run();
