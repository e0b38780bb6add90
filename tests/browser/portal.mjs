// The portal in a real browser (Debian's Chromium driven by playwright-core),
// run by tests/it/browser.rs with the daemon already up:
//   LINK   the magic link taken from a receipt that arrived by mail
//   WIDE   an address-wide link (as "send me a link" mails it)
//   HOSTILE the reference of a ticket built from hostile mail (XSS payloads)
//   OUT    where screenshots go
// Exits non-zero, saying why, on the first failed expectation, and on any
// dialog, page error or console error (a script that ran).
import { chromium } from 'playwright-core';
import { pagesWiderThanAPhone } from './phone.mjs';
import { accessibilityProblems } from './a11y.mjs';

const { LINK, WIDE, HOSTILE, OUT } = process.env;
const fail = (why) => { console.error(`FAIL: ${why}`); process.exit(1); };
const expect = (ok, why) => { if (!ok) fail(why); };

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('dialog', (d) => fail(`a dialog opened: ${d.message()}`));
  page.on('pageerror', (e) => fail(`a page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !/Content Security Policy|Failed to load resource/.test(m.text())) fail(`console error: ${m.text()}`); });
  const shot = async (name) => {
    for (const [label, width] of [['desktop', 1280], ['phone', 360]]) {
      await page.setViewportSize({ width, height: label === 'phone' ? 780 : 900 });
      await page.screenshot({ path: `${OUT}/${name}-${label}.png`, fullPage: true });
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  };
  const status = async () => (await page.locator('.meta .badge').first().innerText()).trim();

  // 1. The link from the receipt signs in and shows the conversation.
  await page.goto(LINK);
  expect(/\/portal\/tickets\/TKT-\d+$/.test(page.url()), `landed on ${page.url()}`);
  const reference = page.url().split('/').pop();
  expect((await page.locator('.bubble.mine').first().innerText()).includes('The printer smokes.'), 'the first message is mine');
  expect((await status()) === 'Open', `status ${await status()}`);
  await shot('ticket');

  // 2. Reply with a photo; the reply shows as my bubble, the photo previewed.
  const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==', 'base64');
  await page.getByLabel('Your reply').fill('Sent from the portal: still smoking.');
  await page.getByLabel(/Attach files/).setInputFiles({ name: 'photo.png', mimeType: 'image/png', buffer: png });
  await page.getByRole('button', { name: 'Send reply' }).click();
  await page.waitForURL(`**/portal/tickets/${reference}`);
  const mine = page.locator('.bubble.mine').last();
  expect((await mine.innerText()).includes('Sent from the portal'), 'my reply is shown');
  expect((await mine.innerText()).includes('photo.png'), 'the file is listed');
  // The preview is loading="lazy": bring it into view, then wait for it to
  // load (or fail) rather than read it at once.
  const preview = mine.locator('img');
  await preview.scrollIntoViewIfNeeded();
  const loaded = await preview.evaluate((img) => new Promise((done) => {
    if (img.complete && img.naturalWidth > 0) return done(img.naturalWidth === 1);
    img.addEventListener('load', () => done(img.naturalWidth === 1));
    img.addEventListener('error', () => done(false));
    setTimeout(() => done(false), 10000);
  }));
  expect(loaded, 'the photo preview loads');
  await shot('reply-with-photo');

  // 3. Close (it asks for confirmation first), then reopen by replying.
  expect(!(await page.locator('form.close').evaluate((f) => f.checkValidity())),
    'the close form cannot be sent unconfirmed');
  await page.getByLabel('Yes, my question is answered: close it').check();
  await page.getByRole('button', { name: 'Close this request' }).click();
  await page.waitForURL(`**/portal/tickets/${reference}`);
  expect((await status()) === 'Closed', `after closing: ${await status()}`);
  await page.getByLabel('Reply to reopen this request').fill('Sorry, it is back.');
  await page.getByRole('button', { name: 'Send reply' }).click();
  await page.waitForURL(`**/portal/tickets/${reference}`);
  expect((await status()) === 'Open', `after replying: ${await status()}`);

  // 4. A ticket's link opens that ticket only; the address-wide link opens
  //    my requests, and a new one from the form.
  await page.goto(new URL('/portal', LINK).href);
  expect((await page.locator('h1').innerText()).includes('This link opens one request'), 'a ticket link does not open the list');
  await page.goto(WIDE);
  await page.waitForURL(/\/portal$/);
  expect((await page.locator('.tickets').innerText()).includes(reference), 'my list shows the ticket');
  await shot('my-requests');
  await page.goto(new URL('/portal/new', LINK).href);
  await shot('new-request');
  await page.getByLabel('Subject').fill('Need a second monitor');
  await page.getByLabel('Category').selectOption('Technical');
  await page.getByLabel('Priority').selectOption('high');
  await page.getByLabel('Message').fill('Ours broke.');
  await page.getByLabel(/Attach files/).setInputFiles({ name: 'broken.txt', mimeType: 'text/plain', buffer: Buffer.from('cracked screen') });
  await page.getByRole('button', { name: 'Send request' }).click();
  await page.waitForURL(/\/portal\/tickets\/TKT-\d+$/);
  expect(page.url().split('/').pop() !== reference, 'a new ticket');
  expect((await page.locator('h1').innerText()).includes('Need a second monitor'), 'the new ticket page');
  expect((await page.locator('.files').innerText()).includes('broken.txt'), 'the new ticket carries its file');
  await page.goto(new URL('/portal/help', LINK).href);
  await shot('help');
  await page.goto(new URL('/portal/profile', LINK).href);
  await page.getByLabel('First name').fill('Ann');
  await page.getByLabel('the team replies').uncheck();
  await page.getByRole('button', { name: 'Save' }).click();
  expect((await page.locator('.notice').innerText()).includes('Saved'), 'the profile is saved');
  expect(!(await page.getByLabel('the team replies').isChecked()), 'the toggle stays off');
  await page.getByLabel('the team replies').check();
  await page.getByRole('button', { name: 'Save' }).click();
  await shot('profile');

  // 5. Keyboard: the reply box and its button are reachable by Tab.
  await page.goto(new URL(`/portal/tickets/${reference}`, LINK).href);
  let reached = false;
  for (let i = 0; i < 30 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement && document.activeElement.id === 'body');
  }
  expect(reached, 'the reply box is reachable with the keyboard');

  // 6. Hostile mail renders inert: the crafted one and every other ticket
  //    (HTML mails of the shared corpus) in the list.
  await page.goto(new URL(`/portal/tickets/${HOSTILE}`, LINK).href);
  await page.evaluate(() => document.querySelectorAll('details').forEach((d) => { d.open = true; }));
  await page.waitForTimeout(500);
  expect(await page.locator('.bubble').count() > 0, 'the hostile ticket shows');
  expect(await page.locator('.bubble .html').count() > 0, 'its formatted (sanitised) HTML shows');
  await shot('hostile');
  await page.goto(new URL('/portal', LINK).href);
  const pages = await page.locator('.tickets a').evaluateAll((as) => as.map((a) => a.href));
  expect(pages.length >= 3, `only ${pages.length} tickets listed`);
  for (const href of pages) {
    await page.goto(href);
    // Open every folded part (full text, formatted HTML) so it renders.
    await page.evaluate(() => document.querySelectorAll('details').forEach((d) => { d.open = true; }));
    const active = await page.evaluate(() => document.querySelectorAll('script:not([src="/static/local-time.js"]), iframe, object, embed, img[onerror], svg, [onload], [onclick]').length);
    expect(active === 0, `${active} active elements on ${href}`);
  }
  await page.waitForTimeout(500);

  // 7. Every page fits a 360 px phone: no horizontal scrolling.
  const every = ['/portal', `/portal/tickets/${reference}`,
    `/portal/tickets/${HOSTILE}`, '/portal/new', '/portal/help', '/portal/profile',
    ...pages.map((h) => new URL(h).pathname)].map((p) => new URL(p, LINK).href);
  const wide = await pagesWiderThanAPhone(page, every);
  expect(wide.length === 0, `pages wider than a 360 px phone: ${wide.join(', ')}`);

  // 8. Accessibility: axe-core over every page: no serious or critical violation.
  const problems = await accessibilityProblems(page, every);
  expect(problems.length === 0, `accessibility violations:\n${problems.join('\n')}`);
  console.log(JSON.stringify({ ok: true, reference, checked: pages.length }));
} finally {
  await browser.close();
}
