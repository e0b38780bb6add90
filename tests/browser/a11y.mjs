// Shared by the browser scripts: axe-core's accessibility rules over pages.
//
// Visits each URL (every folded part opened), runs axe-core in it (evaluated
// through the browser's debugging protocol, which the pages' Content Security
// Policy does not govern), and returns one line per serious or critical
// violation, naming the page, the rule and up to three elements.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export async function accessibilityProblems(page, urls) {
  const problems = [];
  for (const url of urls) {
    if (url !== null) await page.goto(url);
    await page.evaluate(() => document.querySelectorAll('details').forEach((d) => { d.open = true; }));
    await page.evaluate(AXE);
    const violations = await page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] }))
      .violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) })));
    for (const v of violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')) {
      problems.push(`${new URL(page.url()).pathname}: ${v.id} (${v.impact}) ${v.help} at ${v.nodes.join('; ')}`);
    }
  }
  return problems;
}
