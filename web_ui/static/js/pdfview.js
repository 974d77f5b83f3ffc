// PDF pages drawn with pdf.js (npm pdfjs-dist, copied to /static/vendor/pdfjs by
// scripts/install.sh). The file is fetched with the invite token and handed to
// pdf.js as bytes; pdf.js itself loads only its worker, fonts and maps from /static/.
import { api } from "./api.js";

const VENDOR = "/static/vendor/pdfjs/";
let library = null;

async function pdfjs() {
  if (!library) {
    library = import("../vendor/pdfjs/pdf.min.js").then((lib) => {
      lib.GlobalWorkerOptions.workerSrc = `${VENDOR}pdf.worker.min.js`;
      return lib;
    });
  }
  return library;
}

export async function openPdf(path) {
  const lib = await pdfjs();
  const response = await api.raw("GET", path);
  const data = new Uint8Array(await response.arrayBuffer());
  return lib.getDocument({
    data,
    cMapUrl: `${VENDOR}cmaps/`,
    cMapPacked: true,
    standardFontDataUrl: `${VENDOR}standard_fonts/`,
    wasmUrl: `${VENDOR}wasm/`,
    isEvalSupported: false,
    enableXfa: false,
  }).promise;
}

// Draw page `number` of `doc` into `canvas`, as wide as `width` CSS pixels.
// Renders one page at a time per canvas: the newest request wins. Pages load
// asynchronously and may resolve out of order, so a request that is no longer the
// newest once its page arrives gives up instead of cancelling the newer drawing.
export async function drawPage(doc, number, canvas, width) {
  const request = (canvas.drawRequest = (canvas.drawRequest || 0) + 1);
  const page = await doc.getPage(Math.min(Math.max(1, number), doc.numPages));
  if (request !== canvas.drawRequest) return false;
  const base = page.getViewport({ scale: 1 });
  const scale = Math.max(0.1, width / base.width);
  const viewport = page.getViewport({ scale });
  const ratio = Math.min(window.devicePixelRatio || 1, 2);
  canvas.previousTask?.cancel();
  canvas.width = Math.floor(viewport.width * ratio);
  canvas.height = Math.floor(viewport.height * ratio);
  canvas.style.aspectRatio = `${viewport.width} / ${viewport.height}`;
  const task = page.render({
    canvasContext: canvas.getContext("2d"),
    viewport,
    transform: ratio !== 1 ? [ratio, 0, 0, ratio, 0, 0] : null,
  });
  canvas.previousTask = task;
  try {
    await task.promise;
    canvas.dataset.renderedPage = String(page.pageNumber);
    return true;
  } catch (error) {
    if (error?.name === "RenderingCancelledException") return false;
    throw error;
  }
}
