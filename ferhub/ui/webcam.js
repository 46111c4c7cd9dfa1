// The Webcam tab's page side (ferhub/ui/live.py): the camera's frames posted as JPEG bytes, the drawn frames
// drawn as they come back. Run by gr.HTML's js_on_load: `element` is the component, `props.value` the id the
// server gave this page when it loaded (ferhub/ui/webcam.py), by which the tab's Gradio events name its
// session.
// Elements are looked up at each use: Gradio may render the template again (the page's id arrives as the
// component's value once the page has loaded), which replaces them.
const $ = (selector) => element.querySelector(selector);
const capture = document.createElement("canvas");
const IN_FLIGHT = 2; // the next frame uploads while the server works on the one before
const QUALITY = 0.8;
// frames go at most this large: a camera may not honour the 640x480 asked for (Firefox and Safari pick one of
// its own modes, such as 1280x720), and every pixel more costs the page's encoding, both transfers and the
// server's decoding, detection and drawing
const MAX_SIDE = 640;
const base = (globalThis.gradio_config && gradio_config.root) || document.baseURI;
const route = new URL("gradio_api/ferhub/webcam/frame", base.endsWith("/") ? base : base + "/");

let stream = null;
let running = false;
let run = 0; // each Start begins a run; posts of an earlier run end
let sent = 0; // frames posted
let drawn = 0; // the newest frame drawn (a slower reply to an older frame is dropped)
let taken = -1; // the camera frame last taken, so that no two posts carry the same one
let first = true;
let starting = false; // a Start waiting for the camera: another click does not open a second one
let stopped = "stopped"; // what the status says once stopped (the server's, with what was recorded)

function say(text, error = false) {
  const status = $(".fh-live-status");
  status.textContent = text;
  status.classList.toggle("fh-live-error", error);
  // an assertive live region announces an error (no camera, a refused frame); the rate is not announced
  const alert = $(".fh-live-alert");
  if (alert) alert.textContent = error ? text : "";
}

function stop(message) {
  running = false;
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  $(".fh-live-video").srcObject = null;
  $(".fh-live-button").textContent = "Start";
  // the last frame's rate and faces are no longer live: the status says the camera stopped
  if (message) say(message, true);
  else say(stopped);
}

async function start() {
  if (!props.value) {
    say("The page is still connecting to the server; press Start again in a moment.", true);
    return;
  }
  if (starting) return;
  starting = true;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    const video = $(".fh-live-video");
    video.srcObject = stream;
    await video.play();
  } catch (e) {
    stop(`No camera: ${e.name === "NotAllowedError" ? "access was not allowed" : e.message}`);
    return;
  } finally {
    starting = false;
  }
  running = true;
  first = true;
  taken = -1; // a new stream counts its frames from 0
  run += 1;
  $(".fh-live-button").textContent = "Stop";
  say("starting…");
  for (let i = 0; i < IN_FLIGHT; i++) post(run);
}

// the number of a camera frame newer than the last one taken: requestVideoFrameCallback's count where the
// browser has it; else the video's count of frames (getVideoPlaybackQuality, polled) once it passes the last
// one taken, or the next number after a camera's frame time if that count does not move
function nextFrame(video) {
  if (video.requestVideoFrameCallback) {
    return new Promise((r) => video.requestVideoFrameCallback((now, meta) => r(meta.presentedFrames)));
  }
  const count = () => (video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality().totalVideoFrames : 0);
  const since = performance.now();
  return new Promise((r) => {
    const check = () => {
      const n = count();
      if (n > taken) r(n);
      else if (performance.now() - since > 34) r(taken + 1);
      else setTimeout(check, 5);
    };
    check();
  });
}

async function post(mine_run) {
  const live = () => running && run === mine_run;
  while (live()) {
    const video = $(".fh-live-video");
    const frame = await nextFrame(video);
    if (!live()) return;
    if (frame <= taken) continue;
    taken = frame;
    if (!video.videoWidth || !video.videoHeight) continue;
    const scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
    const w = Math.round(video.videoWidth * scale);
    const h = Math.round(video.videoHeight * scale);
    if (capture.width !== w || capture.height !== h) [capture.width, capture.height] = [w, h];
    const context = capture.getContext("2d");
    context.setTransform(-1, 0, 0, 1, w, 0); // mirrored, as a person expects to see themselves
    context.drawImage(video, 0, 0, w, h);
    const mine = ++sent;
    const blob = await new Promise((r) => capture.toBlob(r, "image/jpeg", QUALITY));
    const url = `${route}?session=${encodeURIComponent(props.value)}${first ? "&start=1" : ""}`;
    first = false;
    let reply;
    try {
      reply = await fetch(url, { method: "POST", body: blob, headers: { "content-type": "image/jpeg" } });
    } catch (e) {
      if (live()) stop(`The server cannot be reached: ${e.message}`);
      return;
    }
    if (!live()) return;
    // busy with this page's earlier frames (an earlier run's posts still in flight): this frame is dropped
    if (reply.status === 429 && reply.headers.has("retry-after")) continue;
    if (!reply.ok) {
      let message = `The server refused the frame (${reply.status})`;
      try {
        message = (await reply.json()).error || message;
      } catch (e) {}
      stop(message);
      return;
    }
    const picture = await createImageBitmap(await reply.blob());
    const output = $(".fh-live-output");
    if (mine > drawn && live()) {
      drawn = mine;
      if (output.width !== picture.width || output.height !== picture.height) {
        [output.width, output.height] = [picture.width, picture.height];
      }
      output.getContext("2d").drawImage(picture, 0, 0);
      output.dataset.frames = String(Number(output.dataset.frames || 0) + 1);
      say(decodeURIComponent(reply.headers.get("x-ferhub-status") || ""));
      stopped = decodeURIComponent(reply.headers.get("x-ferhub-stopped") || "stopped");
    }
    picture.close();
  }
}

element.addEventListener("click", (event) => {
  if (event.target.closest(".fh-live-button")) running ? stop() : start();
});
