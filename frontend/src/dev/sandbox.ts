// A mail's HTML part is someone else's page: it is shown only in an <iframe sandbox=""> (no
// scripts, no forms, no popups, an opaque origin) from srcdoc, and this wrapper also keeps it from
// loading anything (images, styles, fonts from the network) and from navigating the frame.
const HEAD = [
  '<!doctype html>',
  '<meta charset="utf-8">',
  `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">`,
  // Links would open a new window, which the sandbox forbids: they do nothing.
  '<base target="_blank">',
].join('')

/** The srcdoc of the sandboxed frame that shows `html`. */
export function sandboxedDocument(html: string): string {
  return HEAD + html
}
