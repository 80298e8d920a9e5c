/**
 * Plain text of a raw RFC 822 email for classification: the Subject plus the readable body, with
 * every other header dropped (the SpamAssassin corpus's `X-Spam-*` headers, the mbox `From ` line,
 * routing headers and so on would give the label away), MIME parts decoded (quoted-printable, base64,
 * charsets), HTML reduced to its text, and attachments skipped.
 *
 * @module
 */

/** Headers of one MIME entity, names lowercased, folded lines joined. */
type Headers = Map<string, string>;

/** Splits a raw entity (a "binary string": one char per byte) into headers and body. */
function splitEntity(raw: string): { headers: Headers; body: string } {
  const text = raw.replace(/\r\n?/g, "\n");
  const blank = text.search(/\n\n/);
  const head = blank < 0 ? text : text.slice(0, blank);
  const body = blank < 0 ? "" : text.slice(blank + 2);
  const headers: Headers = new Map();
  let last: string | null = null;
  for (const line of head.split("\n")) {
    if (/^[ \t]/.test(line) && last) {
      headers.set(last, headers.get(last)! + " " + line.trim());
      continue;
    }
    const m = /^([!-9;-~]+):\s*(.*)$/.exec(line);
    if (!m) continue; // the mbox "From " line and anything else that is not a header
    last = m[1].toLowerCase();
    if (!headers.has(last)) headers.set(last, m[2]);
  }
  return { headers, body };
}

/** A header parameter such as `boundary` or `charset` (quoted or not). */
function param(value: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|;)\\s*${name}\\s*=\\s*(?:"([^"]*)"|([^;\\s]+))`, "i").exec(value);
  return m ? (m[1] ?? m[2]) : undefined;
}

/** A "binary string" of bytes: char code = byte value. */
function binaryString(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    // apply, not spread: spreading a typed array walks an iterator (10x slower on big emails).
    out += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192) as unknown as number[]);
  }
  return out;
}

/** Bytes of a binary string (char codes 0-255). */
function bytesOf(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** Decodes bytes in `charset` (UTF-8 when it says so, or when valid; else Windows-1252). */
function decodeCharset(bytes: Uint8Array, charset: string | undefined): string {
  const cs = (charset ?? "").toLowerCase();
  if (cs && cs !== "us-ascii" && !cs.startsWith("iso-8859-1") && !cs.startsWith("windows-1252")) {
    try {
      return new TextDecoder(cs).decode(bytes);
    } catch { /* unknown charset label: fall through */ }
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return new TextDecoder("windows-1252").decode(bytes);
  }
}

/** Quoted-printable → binary string. */
export function decodeQuotedPrintable(s: string): string {
  return s.replace(/=\r?\n/g, "").replace(
    /=([0-9A-Fa-f]{2})/g,
    (_, h) => String.fromCharCode(parseInt(h, 16)),
  );
}

/** Base64 → binary string (invalid characters ignored; an unparsable body gives ""). */
function decodeBase64(s: string): string {
  let clean = s.replace(/[^A-Za-z0-9+/]/g, "");
  if (clean.length % 4 === 1) clean = clean.slice(0, -1); // a stray character cannot be decoded
  try {
    return atob(clean + "=".repeat((4 - (clean.length % 4)) % 4));
  } catch {
    return "";
  }
}

/** RFC 2047 encoded words (`=?utf-8?B?...?=`, `=?iso-8859-1?Q?...?=`) in a header value. */
export function decodeHeaderWords(value: string): string {
  return value.replace(/\?=\s+=\?/g, "?==?").replace(
    /=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g,
    (_, charset: string, enc: string, data: string) => {
      const bin = enc.toUpperCase() === "B"
        ? decodeBase64(data)
        : decodeQuotedPrintable(data.replaceAll("_", " "));
      return decodeCharset(bytesOf(bin), charset);
    },
  );
}

const ENTITIES: Record<string, string> = {
  nbsp: " ",
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  copy: "©",
  reg: "®",
  trade: "™",
  hellip: "…",
  mdash: "—",
  ndash: "–",
  rsquo: "’",
  lsquo: "‘",
  rdquo: "”",
  ldquo: "“",
  bull: "•",
  middot: "·",
  pound: "£",
  euro: "€",
};

/** Text of an HTML fragment: scripts, styles and comments dropped, block tags → newlines, entities decoded. */
export function htmlToText(html: string): string {
  return html
    .replace(/<!--[\s\S]*?-->/g, " ")
    .replace(/<(script|style|head|title)\b[\s\S]*?<\/\1\s*>/gi, " ")
    .replace(/<(br|p|div|tr|li|h[1-6]|table|center|blockquote)\b[^>]*>/gi, "\n")
    .replace(/<\/?[a-zA-Z!][^>]*>/g, " ")
    .replace(/&(#x[0-9a-fA-F]+|#\d+|[a-zA-Z]+);?/g, (m, e: string) => {
      if (e[0] === "#") {
        const code = e[1] === "x" || e[1] === "X" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
        return code > 0 && code < 0x110000 ? String.fromCodePoint(code) : " ";
      }
      return ENTITIES[e.toLowerCase()] ?? m;
    });
}

const LOOKS_HTML = /<(html|body|table|font|div|p|br|center|a\s+href)\b/i;

/** The readable text parts of one MIME entity, in order (alternatives: the plain part when there is one). */
function entityText(raw: string, depth: number): string[] {
  const { headers, body } = splitEntity(raw);
  const ctype = headers.get("content-type") ?? "text/plain";
  const type = ctype.split(";")[0].trim().toLowerCase();
  if (depth < 8 && type.startsWith("multipart/")) {
    const boundary = param(ctype, "boundary");
    if (!boundary) return [bodyText(body, headers, "text/plain")];
    const esc = boundary.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const parts = body.split(new RegExp(`^--${esc}(?:--)?[ \\t]*$`, "m")).slice(1);
    const texts = parts.map((p) => entityText(p.replace(/^\r?\n/, ""), depth + 1));
    if (type === "multipart/alternative") {
      // Prefer the text/plain alternative; otherwise the first alternative that yields text.
      const plainIdx = parts.findIndex((p) =>
        /^text\/plain/i.test(splitEntity(p.replace(/^\r?\n/, "")).headers.get("content-type") ?? "text/plain")
      );
      const hasText = (t: string[]) => t.join("").trim().length > 0;
      const pick = plainIdx >= 0 && hasText(texts[plainIdx]) ? texts[plainIdx] : texts.find(hasText);
      return pick ?? [];
    }
    return texts.flat();
  }
  if (type === "message/rfc822" && depth < 8) return entityText(body, depth + 1);
  if (!type.startsWith("text/") && type !== "") return []; // attachments, images
  return [bodyText(body, headers, type)];
}

/** Decoded text of a leaf body. */
function bodyText(body: string, headers: Headers, type: string): string {
  const cte = (headers.get("content-transfer-encoding") ?? "").trim().toLowerCase();
  let bin = body;
  if (cte === "quoted-printable") bin = decodeQuotedPrintable(body);
  else if (cte === "base64") bin = decodeBase64(body);
  let text = decodeCharset(bytesOf(bin), param(headers.get("content-type") ?? "", "charset"));
  if (type === "text/html" || LOOKS_HTML.test(text)) text = htmlToText(text);
  return text;
}

/** Collapses runs of spaces and blank lines. */
function tidy(text: string): string {
  return text
    .replace(/[ \t\u00a0]+/g, " ")
    .replace(/ ?\n[ \n]*/g, "\n")
    .trim();
}

/** Options of {@link emailToText}. */
export interface EmailTextOptions {
  /** Cap on the characters returned (the model reads at most a few hundred tokens). */
  maxChars?: number;
}

/**
 * Subject and body text of a raw email given as bytes. Only the Subject header is kept; the
 * SpamAssassin corpus's anonymised recipient address (`...@spamassassin.taint.org`) becomes
 * `user@example.com`, so it cannot stand in for the label either.
 */
export function emailToText(raw: Uint8Array, opts: EmailTextOptions = {}): string {
  const bin = binaryString(raw); // one char per byte; charsets are decoded part by part
  const { headers } = splitEntity(bin);
  const subject = decodeHeaderWords(decodeCharset(bytesOf(headers.get("subject") ?? ""), undefined));
  const body = entityText(bin, 0).join("\n");
  let text = tidy(`${subject.trim()}\n${body}`);
  // The look-behind starts a match only at the start of a word: linear time on long base64-like runs.
  if (/taint\.org/i.test(text)) {
    text = text.replace(/(?<![\w.+=@-])[\w.+=-]*@?[\w.-]*spamassassin\.taint\.org/gi, "user@example.com");
  }
  // A forwarded message's X-Spam-* lines (SpamAssassin's verdict on some other mail) go too.
  text = text.replace(/^X-Spam-[\w-]+:.*\n?/gim, "");
  const max = opts.maxChars ?? 4000;
  if (text.length > max) text = text.slice(0, max).replace(/\s\S*$/, "");
  return text;
}
