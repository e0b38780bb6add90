// The agent console in a real browser (Debian's Chromium driven by
// playwright-core), run by tests/it/browser.rs with the daemon already up:
//   BASE      the daemon's URL        EMAIL, PASSWORD  an admin's sign-in
//   MAILBOX   JSON {name, address, host, port, username, password} of a
//             real IMAP account to add through the admin page
//   OUT       where screenshots go
// Prints {"ok":true,...} at the end; exits non-zero, saying why, on the
// first failed expectation, and on any dialog, page error or console error.
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { pagesWiderThanAPhone } from './phone.mjs';
import { accessibilityProblems } from './a11y.mjs';

const { BASE, EMAIL, PASSWORD, MAILBOX, OUT } = process.env;
const mailbox = JSON.parse(MAILBOX);
const fail = (why) => { console.error(`FAIL: ${why}`); process.exit(1); };
const expect = (ok, why) => { if (!ok) fail(why); };

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
try {
  // A viewer in Tokyo whose browser speaks German: dates follow them.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true, locale: 'de-DE', timezoneId: 'Asia/Tokyo' });
  const page = await context.newPage();
  page.on('dialog', (d) => fail(`a dialog opened: ${d.message()}`));
  page.on('pageerror', (e) => fail(`a page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !/Content Security Policy|Failed to load resource/.test(m.text())) fail(`console error: ${m.text()}`); });
  const shot = async (name) => {
    for (const [label, width] of [['desktop', 1280], ['phone', 360]]) {
      await page.setViewportSize({ width, height: label === 'phone' ? 780 : 900 });
      await page.screenshot({ path: `${OUT}/console-${name}-${label}.png`, fullPage: true });
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  };
  const rows = async () => (await page.locator('table.queue tbody tr td:nth-child(3) a').allInnerTexts()).map((s) => s.trim());
  const body = async () => page.locator('main').innerText();
  // Submits with a click and waits for the page the POST answers with.
  const submit = async (locator) => {
    await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      locator.click(),
    ]);
    await page.waitForLoadState('domcontentloaded');
  };

  // 1. The console sends a stranger to sign in; a wrong password is refused.
  await page.goto(`${BASE}/console`);
  expect(page.url().endsWith('/console/login'), `not sent to sign in: ${page.url()}`);
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill('wrong password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  { const b = await body(); expect(b.includes('Wrong email or password.'), `a wrong password is refused: ${b.slice(0, 300)}`); }
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${BASE}/console`);
  const all = await rows();
  expect(all.length === 3, `three tickets in the queue: ${all}`);
  await shot('queue');

  // Keys: j/k choose a row, ? lists the keys (Escape closes), / goes to
  // the search, and a key typed into a field stays there.
  await page.locator('main h1').click();
  for (const key of ['j', 'j', 'k']) await page.keyboard.press(key);
  expect(await page.locator('#queue-results tbody tr.kb-current').count() === 1, 'one chosen row');
  expect(await page.locator('#queue-results tbody tr').first().evaluate((r) => r.classList.contains('kb-current')), 'j j k chooses the first row');
  await page.keyboard.press('?');
  expect(await page.getByRole('dialog', { name: 'Keyboard shortcuts' }).isVisible(), '? lists the keys');
  await page.keyboard.press('Escape');
  expect(await page.getByRole('dialog', { name: 'Keyboard shortcuts' }).count() === 0, 'Escape closes the list');
  await page.keyboard.press('/');
  expect(await page.evaluate(() => document.activeElement.name) === 'q', '/ goes to the search');
  await page.keyboard.type('jk');
  expect(await page.getByLabel('Search').inputValue() === 'jk', 'keys typed into a field stay there');

  // 2. Search and filter; the filter stays in the URL.
  await page.getByLabel('Search').fill('printer');
  await page.getByLabel('Status', { exact: true }).selectOption('open');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/q=printer/);
  expect(/status=open/.test(page.url()), `the filter is in the URL: ${page.url()}`);
  const found = await rows();
  expect(found.length === 1, `one printer ticket: ${found}`);
  const reference = found[0];

  // 3. Open it: the mail's text is there; reply with a status.
  await page.locator('main h1').click();
  await page.keyboard.press('j');
  await page.keyboard.press('o');
  await page.waitForURL(`**/console/tickets/${reference}`);
  await page.keyboard.press('r');
  expect(await page.evaluate(() => document.activeElement.id) === 'reply', 'r goes to the reply box');
  await page.locator('main h1').click();
  expect((await body()).includes('The printer smokes.'), 'the mail is shown');
  {
    const [at, shown, words] = await page.locator('main time[datetime]').first()
      .evaluate((t) => [t.getAttribute('datetime'), t.textContent, t.title]);
    const want = new Intl.DateTimeFormat('de-DE', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'Asia/Tokyo' }).format(new Date(at));
    expect(shown === want && words.endsWith('UTC'), `a date in the viewer's format and zone: "${shown}" (want "${want}", server's words "${words}")`);
  }
  // Its formatted view shows the inline photo in place; the photo is also previewed.
  await page.locator('details.formatted summary').first().click();
  await page.waitForFunction(() => {
    const img = document.querySelector('details.formatted .html img');
    return img && img.complete && img.naturalWidth > 0;
  }, null, { timeout: 10000 }).catch(async () => fail(`the inline image does not show in the formatted view: ${(await page.evaluate(() => document.querySelector('main').innerHTML)).slice(0, 2500)}`));
  const src = await page.locator('details.formatted .html img').first().getAttribute('src');
  expect(src.startsWith('/console/attachments/'), `the inline image points at its attachment: ${src}`);
  expect(await page.locator('.files img[alt="smoke.png"]').count() === 1, 'the image attachment is previewed');
  // A canned reply, written on its page and picked from the reply box by
  // typing its name: its text, filled for this ticket, lands at the cursor.
  const ticketUrl = page.url();
  await page.getByRole('link', { name: 'Canned replies' }).click();
  await page.waitForURL('**/console/canned');
  await page.getByLabel('Name', { exact: true }).fill('Technician');
  await page.getByLabel('Text', { exact: true }).fill('We are sending a technician. (Ref {{ticket.reference}})');
  await page.getByLabel('Share with the team').check();
  await submit(page.getByRole('button', { name: 'Add' }));
  expect((await body()).includes('Technician'), 'the canned reply is listed');
  await page.goto(ticketUrl);
  await page.getByLabel('Canned reply').fill('Technician');
  await page.getByLabel('Canned reply').press('Enter');
  const drafted = await page.getByLabel('Reply to the requester').inputValue();
  expect(drafted === `We are sending a technician. (Ref ${reference})`, `the canned text is inserted, filled: "${drafted}"`);
  expect(page.url() === ticketUrl, 'inserting stays on the page (no form sent)');
  await page.getByLabel('Then set status').selectOption('pending');
  await page.getByRole('button', { name: 'Send reply' }).click();
  await page.waitForURL(`**/console/tickets/${reference}`);
  expect((await page.locator('.meta .badge').first().innerText()).trim() === 'Pending', 'the status is pending');

  // 4. An internal note, set apart from replies.
  await page.getByLabel(/Internal note/).fill('Secret: the technician is expensive.');
  await page.getByRole('button', { name: 'Add note' }).click();
  await page.waitForURL(`**/console/tickets/${reference}`);
  expect((await page.locator('.msg-note').last().innerText()).includes('Secret: the technician is expensive.'), 'the note is shown as a note');

  // 5. Assign it to myself and tag it.
  await page.getByLabel('Assignee').selectOption(EMAIL);
  await page.getByLabel(/Tags/).fill('hardware, vip');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await page.waitForURL(`**/console/tickets/${reference}`);
  const thread = await body();
  expect(thread.includes(`Assigned to ${EMAIL}`), 'the assignment is recorded');
  expect(thread.includes('Tags set to hardware, vip'), 'the tags are recorded');
  await shot('ticket');

  // 6. Bulk: the two other tickets to high priority.
  await page.goto(`${BASE}/console`);
  const others = all.filter((r) => r !== reference);
  for (const r of others) await page.getByLabel(`Select ${r}`).check();
  await page.getByLabel('New priority').selectOption('high');
  await submit(page.getByRole('button', { name: 'Apply to selected' }));
  expect((await body()).includes('Updated 2 of 2 tickets.'), 'the bulk update reports');
  await page.goto(`${BASE}/console?priority=high`);
  const high = await rows();
  expect(high.length === 2 && others.every((r) => high.includes(r)), `high priority: ${high}`);

  // 7. Export the filtered list as CSV.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: 'Export CSV' }).click(),
  ]);
  const csv = readFileSync(await download.path(), 'utf8').replace(/^\uFEFF/, '').trim().split(/\r\n/);
  expect(csv[0].startsWith('reference,subject,status,priority'), `CSV header: ${csv[0]}`);
  expect(csv.length === 3 && others.every((r) => csv.some((l) => l.startsWith(`${r},`))), `CSV rows: ${csv}`);

  // 8. Add a mailbox through the admin page, then test its connection.
  await page.getByRole('link', { name: 'Mailboxes' }).click();
  await page.waitForURL('**/console/admin/mailboxes');
  await page.getByLabel('Name', { exact: true }).fill(mailbox.name);
  await page.getByLabel('Support address').fill(mailbox.address);
  await page.getByLabel('Host', { exact: true }).first().fill(mailbox.host);
  await page.getByLabel('Port', { exact: true }).first().fill(String(mailbox.port));
  await page.getByLabel('TLS', { exact: true }).first().selectOption('none');
  await page.getByLabel('Username', { exact: true }).first().fill(mailbox.username);
  await page.getByLabel(/^Password/).first().fill(mailbox.password);
  await submit(page.getByRole('button', { name: 'Save mailbox' }));
  const saved = await body();
  expect(saved.includes(`Mailbox ${mailbox.name} saved`), `the mailbox is saved: ${saved.slice(0, 300)}`);
  const row = page.locator('table.queue tbody tr', { hasText: mailbox.address });
  await submit(row.getByRole('button', { name: 'Test' }));
  const tested = await body();
  expect(tested.includes('Connection ok'), `the connection test: ${tested.slice(0, 300)}`);
  await shot('mailboxes');

  // 9. Every page fits a 360 px phone: no horizontal scrolling.
  const every = ['/console', `/console/tickets/${reference}`,
    '/console/admin/mailboxes', `/console/admin/mailboxes/${mailbox.name}`, '/console/admin/settings',
    '/console/admin/users', '/console/admin/outbox', '/console/profile', '/console/canned'].map((p) => `${BASE}${p}`);
  const wide = await pagesWiderThanAPhone(page, every);
  expect(wide.length === 0, `pages wider than a 360 px phone: ${wide.join(', ')}`);

  // 10. Accessibility: axe-core over every page, the sign-in page (seen by
  // a new visitor) included: no serious or critical violation.
  const problems = await accessibilityProblems(page, every);
  const visitor = await browser.newContext();
  const signIn = await visitor.newPage();
  await signIn.goto(`${BASE}/console/login`);
  problems.push(...await accessibilityProblems(signIn, [null]));
  await visitor.close();
  expect(problems.length === 0, `accessibility violations:\n${problems.join('\n')}`);

  console.log(JSON.stringify({ ok: true, reference, bulk: others, csv_rows: csv.length - 1 }));
} finally {
  await browser.close();
}
