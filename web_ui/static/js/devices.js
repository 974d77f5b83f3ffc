// Camera and microphone: ask once, and turn every refusal into a sentence a person
// can act on. The stream lives for the whole page; reconnecting reuses it.

const VIDEO = { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15, max: 24 } };

// -> {stream, note}: stream null when nothing could be opened; note {key, params} or null.
export async function openDevices() {
  if (!navigator.mediaDevices?.getUserMedia) return { stream: null, note: { key: "mediaInsecure" } };
  const ask = (constraints) => navigator.mediaDevices.getUserMedia(constraints);
  try {
    return { stream: await ask({ audio: true, video: VIDEO }), note: null };
  } catch (error) {
    console.warn("[room] getUserMedia failed:", error.name, error.message);
    if (error.name === "NotAllowedError" || error.name === "SecurityError") {
      return { stream: null, note: { key: "mediaDenied" } };
    }
    // One of the two missing or busy: keep whichever still works.
    for (const [constraints, key] of [[{ audio: true }, "audioOnly"], [{ video: VIDEO }, "videoOnly"]]) {
      try {
        return { stream: await ask(constraints), note: { key } };
      } catch {
        // try the other one
      }
    }
    if (error.name === "NotFoundError" || error.name === "OverconstrainedError") {
      return { stream: null, note: { key: "mediaMissing" } };
    }
    if (error.name === "NotReadableError" || error.name === "AbortError") {
      return { stream: null, note: { key: "mediaBusy" } };
    }
    return { stream: null, note: { key: "mediaFailed", params: { detail: error.name } } };
  }
}

export function describeStream(stream) {
  return stream ? stream.getTracks().map((track) => track.kind).sort().join("+") : "none";
}

// A microphone level meter for the preview: calls `onLevel(0..1)` until stopped.
export function levelMeter(stream, onLevel) {
  const track = stream?.getAudioTracks()[0];
  const Context = window.AudioContext ?? window.webkitAudioContext;
  if (!track || !Context) return () => {};
  const context = new Context();
  const analyser = context.createAnalyser();
  analyser.fftSize = 256;
  context.createMediaStreamSource(new MediaStream([track])).connect(analyser);
  const samples = new Uint8Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getByteTimeDomainData(samples);
    let peak = 0;
    for (const sample of samples) peak = Math.max(peak, Math.abs(sample - 128) / 128);
    onLevel(peak);
  }, 150);
  return () => {
    clearInterval(timer);
    context.close().catch(() => {});
  };
}
