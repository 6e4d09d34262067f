// Uploading a file from the browser through ImageService.UploadImage, a client-streaming RPC.
// gRPC-web clients cannot stream a request, but the protocol's request body is just the
// messages one after another, and tonic-web hands them to the service as its stream. So the
// whole stream is sent as one body: the header message, the file in 1 MiB chunk messages
// (Blob slices of the File, never copied into memory), then the checksum message. XHR, for
// upload progress.
import { csrfHeader } from "./session";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  UploadImageRequestSchema, UploadImageResponseSchema, type UploadImageHeader, type UploadImageResponse,
} from "./gen/quantix/v1/image_pb.js";
import { Sha256 } from "./sha256";

const CHUNK = 1 << 20;

function frame(msgLen: number): Uint8Array<ArrayBuffer> {
  const f = new Uint8Array(5);
  new DataView(f.buffer).setUint32(1, msgLen);
  return f;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

function message(req: Parameters<typeof create<typeof UploadImageRequestSchema>>[1]): BlobPart[] {
  const bytes = new Uint8Array(toBinary(UploadImageRequestSchema, create(UploadImageRequestSchema, req)));
  return [frame(bytes.length), bytes];
}

export async function hashFile(file: File, progress: (done: number) => void): Promise<string> {
  const h = new Sha256();
  for (let at = 0; at < file.size; at += 8 * CHUNK) {
    h.update(new Uint8Array(await file.slice(at, at + 8 * CHUNK).arrayBuffer()));
    progress(Math.min(file.size, at + 8 * CHUNK));
  }
  return h.hex();
}

export class UploadError extends Error {}

export async function uploadImage(
  file: File,
  header: Omit<UploadImageHeader, "$typeName" | "fileName" | "sizeBytes">,
  onProgress: (phase: "hashing" | "sending", done: number, total: number) => void,
): Promise<UploadImageResponse> {
  const sha256 = await hashFile(file, (d) => onProgress("hashing", d, file.size));
  const parts: BlobPart[] = message({
    part: { case: "header", value: { ...header, fileName: file.name, sizeBytes: BigInt(file.size) } },
  });
  for (let at = 0; at < file.size; at += CHUNK) {
    const n = Math.min(CHUNK, file.size - at);
    const tag = new Uint8Array([0x12, ...varint(n)]) as Uint8Array<ArrayBuffer>; // field 2 (chunk), length-delimited
    parts.push(frame(tag.length + n), tag, file.slice(at, at + n));
  }
  parts.push(...message({ part: { case: "sha256", value: sha256 } }));
  const body = new Blob(parts);

  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/quantix.v1.ImageService/UploadImage");
  xhr.responseType = "arraybuffer";
  xhr.setRequestHeader("content-type", "application/grpc-web+proto");
  xhr.setRequestHeader("x-grpc-web", "1");
  for (const [k, v] of Object.entries(csrfHeader())) xhr.setRequestHeader(k, v);
  xhr.upload.onprogress = (e) => onProgress("sending", e.loaded, e.total);
  await new Promise<void>((res, rej) => {
    xhr.onload = () => res();
    xhr.onerror = () => rej(new UploadError("the upload failed: the host did not answer"));
    xhr.send(body);
  });
  if (xhr.status !== 200) throw new UploadError(`the upload failed: HTTP ${xhr.status}`);
  // A refusal before any message comes as headers ("trailers-only"); otherwise the trailers
  // are the last frame of the body.
  let status = xhr.getResponseHeader("grpc-status");
  let text = xhr.getResponseHeader("grpc-message") ?? "";
  let answer: UploadImageResponse | undefined;
  const data = new Uint8Array(xhr.response as ArrayBuffer);
  for (let at = 0; at + 5 <= data.length;) {
    const len = new DataView(data.buffer, at + 1, 4).getUint32(0);
    const payload = data.subarray(at + 5, at + 5 + len);
    if (data[at] & 0x80) {
      for (const line of new TextDecoder().decode(payload).split("\r\n")) {
        const [k, ...v] = line.split(":");
        if (k.toLowerCase() === "grpc-status") status = v.join(":").trim();
        if (k.toLowerCase() === "grpc-message") text = v.join(":").trim();
      }
    } else {
      answer = fromBinary(UploadImageResponseSchema, payload);
    }
    at += 5 + len;
  }
  if (status && status !== "0") throw new UploadError(decodeURIComponent(text) || `gRPC status ${status}`);
  if (!answer) throw new UploadError("the host sent no answer");
  return answer;
}
