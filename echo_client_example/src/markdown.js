// Markdown for message bodies. Raw HTML in a message is shown as text, never parsed (`html: false`),
// and markdown-it refuses `javascript:`, `vbscript:` and `data:` links (except images), so a
// message cannot inject markup or script into the page. Images are never loaded: a reply could
// otherwise send conversation text to any server in an image URL, so `![alt](url)` becomes a
// plain link the reader may choose to follow (the page's CSP also limits images to this origin).

import MarkdownIt from "markdown-it";

const markdown = new MarkdownIt({ html: false, linkify: true, breaks: true, typographer: false });

const renderToken = (tokens, index, options, _env, self) => self.renderToken(tokens, index, options);
const openLink = markdown.renderer.rules.link_open ?? renderToken;
markdown.renderer.rules.link_open = (tokens, index, options, env, self) => {
  tokens[index].attrSet("target", "_blank");
  tokens[index].attrSet("rel", "noopener noreferrer nofollow");
  return openLink(tokens, index, options, env, self);
};

markdown.renderer.rules.image = (tokens, index, options, env, self) => {
  const token = tokens[index];
  const src = token.attrGet("src") ?? "";
  const alt = self.renderInlineAsText(token.children ?? [], options, env) || src;
  const text = markdown.utils.escapeHtml(alt);
  if (!/^https?:\/\//i.test(src)) return text;
  const href = markdown.utils.escapeHtml(src);
  return `<a href="${href}" target="_blank" rel="noopener noreferrer nofollow" data-image-link>${text}</a>`;
};

/** HTML for a message's Markdown text, safe to insert with `v-html`. */
export function renderMarkdown(text) {
  return markdown.render(text ?? "");
}
