// Markdown for message bodies. Raw HTML in a message is shown as text, never parsed (`html: false`),
// and markdown-it refuses `javascript:`, `vbscript:` and `data:` links (except images), so a
// message cannot inject markup or script into the page.

import MarkdownIt from "markdown-it";

const markdown = new MarkdownIt({ html: false, linkify: true, breaks: true, typographer: false });

const renderToken = (tokens, index, options, _env, self) => self.renderToken(tokens, index, options);
const openLink = markdown.renderer.rules.link_open ?? renderToken;
markdown.renderer.rules.link_open = (tokens, index, options, env, self) => {
  tokens[index].attrSet("target", "_blank");
  tokens[index].attrSet("rel", "noopener noreferrer nofollow");
  return openLink(tokens, index, options, env, self);
};

/** HTML for a message's Markdown text, safe to insert with `v-html`. */
export function renderMarkdown(text) {
  return markdown.render(text ?? "");
}
