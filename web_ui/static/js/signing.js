// Electronic signatures of protocols (rule V6; protocols/signing.py): this
// browser's ECDSA P-256 key pair, the private half non-extractable and kept in
// IndexedDB, the public half registered with the server once (POST .../keys). An
// approval or signature signs the exact statement the server gives
// (GET .../statement: it names the signer and the server's time); the time goes
// back with the signature so the server can rebuild and check it. A person's
// further key signs only once the secretary approves it.
import { api, dayPath } from "./api.js";
import { t } from "./i18n.js";
import { myId, state } from "./store.js";

const DB_NAME = "defense-room";
const STORE = "signing-keys";

function database() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function stored(name, value) {
  const db = await database();
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, value === undefined ? "readonly" : "readwrite");
    const request = value === undefined ? tx.objectStore(STORE).get(name) : tx.objectStore(STORE).put(value, name);
    request.onsuccess = () => resolve(value === undefined ? request.result : value);
    request.onerror = () => reject(request.error);
  });
}

async function myKey() {
  const name = `${state.me.day.id}:${myId()}`;
  const known = await stored(name);
  if (known?.keyId && known.approved !== false) return known;
  const pair = known?.privateKey ? known : await crypto.subtle.generateKey(
    { name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const jwk = known?.jwk ?? await crypto.subtle.exportKey("jwk", pair.publicKey);
  const entry = { privateKey: pair.privateKey, jwk: { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y } };
  await stored(name, entry);  // kept before registering: a retry registers the same key
  const answer = await api.post(dayPath("/keys"), { jwk: entry.jwk });
  entry.keyId = answer.key_id;
  entry.fingerprint = answer.fingerprint;
  entry.approved = answer.approved;
  return stored(name, entry);
}


function base64url(bytes) {
  let text = "";
  for (const byte of new Uint8Array(bytes)) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// -> {key_id, signature, at} for the body of .../approve or .../sign
export async function signStatement(action, document, hash) {
  if (!crypto?.subtle) throw new Error("this page is not secure (https), so it cannot sign");
  const key = await myKey();
  if (key.approved === false) throw new Error(t("keyPending", { key: key.keyId }));
  const query = new URLSearchParams({ action, hash });
  const given = await api.get(dayPath(`/protocols/${encodeURIComponent(document)}/statement?${query}`));
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, key.privateKey,
    new TextEncoder().encode(given.statement));
  return { key_id: key.keyId, signature: base64url(signature), at: given.at };
}
