/** Checks report.html pages share across the report's tests. */

/**
 * No network fetches: the only tags with a src/href attribute are gallery <img>s whose src is an inline JPEG
 * (data: URI); no url() or @import in CSS, no <script>, <link>, <iframe>, <object>. (Escaped caption text such as
 * `&lt;img src=...` is not a tag.)
 */
export function expectSelfContained(html: string): void {
  const tags = html.match(/<[a-z][^>]*>/gi) ?? [];
  const inlineImage = (t: string) => /^<img src="data:image\/jpeg;base64,[A-Za-z0-9+/=]+" width="\d+" height="\d+" alt="[^"]*">$/.test(t);
  expect(tags.filter((t) => /\s(src|href|xlink:href)\s*=/i.test(t) && !inlineImage(t))).toEqual([]);
  expect(tags.filter((t) => /^<(script|link|iframe|object|embed|base)\b/i.test(t))).toEqual([]);
  expect(html).not.toMatch(/url\(|@import|https?:\/\//i);
}
