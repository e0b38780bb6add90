// Two agents on one ticket in two real browsers (Debian's Chromium driven
// by playwright-core), each signed in to a different daemon of the same
// PostgreSQL database, run by tests/it/browser.rs:
//   BASE1, BASE2          the two daemons' URLs
//   A_EMAIL, B_EMAIL      the agents (their password: PASSWORD)
//   REF                   the ticket they both open
//   TOKEN                 an API token, to open a ticket while the queue is watched
// They see each other on the ticket (and that one is typing), a reply sent
// by one appears on the other's page without a reload, and the other's
// reply, written before it arrived, is stopped with the question and then
// sent anyway; a new ticket appears in a watched queue. Prints {"ok":true}.
import { chromium } from 'playwright-core';

const { BASE1, BASE2, A_EMAIL, B_EMAIL, PASSWORD, REF, TOKEN } = process.env;
// What the pages said (console, failed requests): printed with a failure.
const heard = [];
const fail = (why) => { console.error(`FAIL: ${why}\n${heard.join('\n')}`); process.exit(1); };
const expect = (ok, why) => { if (!ok) fail(why); };
const within = { timeout: 20000 };

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
try {
  const signIn = async (base, email) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on('dialog', (d) => fail(`a dialog opened: ${d.message()}`));
    page.on('pageerror', (e) => fail(`a page error: ${e.message}`));
    page.on('console', (m) => heard.push(`${email} console ${m.type()}: ${m.text()}`));
    page.on('requestfailed', (r) => heard.push(`${email} request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
    page.on('response', (r) => { if (r.status() >= 400) heard.push(`${email} ${r.status()}: ${r.request().method()} ${r.url()}`); });
    await page.goto(`${base}/console/login`);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/console`);
    return page;
  };
  const alan = await signIn(BASE1, A_EMAIL);
  const bea = await signIn(BASE2, B_EMAIL);
  const ticket = (base) => `${base}/console/tickets/${REF}`;
  await alan.goto(ticket(BASE1));
  await bea.goto(ticket(BASE2));

  // 1. Each sees the other on the ticket, and that the other is typing.
  await alan.locator('#presence', { hasText: 'Bea' }).waitFor(within)
    .catch(() => fail('Alan does not see Bea on the ticket'));
  await bea.locator('#presence', { hasText: 'Alan' }).waitFor(within)
    .catch(() => fail('Bea does not see Alan on the ticket'));
  await bea.getByLabel('Reply to the requester').pressSequentially('Bea here: fixed it.');
  await alan.locator('#presence', { hasText: 'typing a reply' }).waitFor(within)
    .catch(() => fail('Alan does not see Bea typing'));

  // 2. Alan drafts; Bea sends hers: it appears on Alan's page, no reload.
  await alan.getByLabel('Reply to the requester').fill('Alan here: a technician is coming.');
  await bea.getByRole('button', { name: 'Send reply' }).click();
  await bea.waitForURL(ticket(BASE2));
  await alan.locator('#thread li.arrived', { hasText: 'Bea here: fixed it.' }).waitFor(within)
    .catch(() => fail("Bea's reply does not appear on Alan's page"));
  expect(await alan.locator('#live-news').isVisible(), 'Alan is told a message arrived');
  expect(await alan.getByLabel('Reply to the requester').inputValue() === 'Alan here: a technician is coming.',
    "Alan's draft is untouched");

  // 3. Alan sends his draft: the server stops it and asks.
  await alan.getByRole('button', { name: 'Send reply' }).click();
  await alan.waitForLoadState('domcontentloaded');
  const asked = await alan.locator('main').innerText();
  expect(asked.includes('A new message arrived while you were writing'), `Alan is asked: ${asked.slice(0, 400)}`);
  expect(await alan.getByLabel('Reply to the requester').inputValue() === 'Alan here: a technician is coming.',
    'the draft is kept');
  await alan.getByRole('button', { name: 'Send anyway' }).click();
  await alan.waitForURL(ticket(BASE1));
  expect((await alan.locator('#thread').innerText()).includes('Alan here: a technician is coming.'), "Alan's reply is sent");
  await bea.locator('#thread li.arrived', { hasText: 'a technician is coming' }).waitFor(within)
    .catch(() => fail("Alan's reply does not appear on Bea's page"));

  // 4. A watched queue shows a ticket opened meanwhile (through the other daemon).
  await bea.goto(`${BASE2}/console`);
  const opened = await fetch(`${BASE1}/api/v1/tickets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ requester: { email: 'carl@example.org' }, subject: 'Live subject', body: 'Hi.' }),
  });
  expect(opened.status === 201, `a ticket is opened: ${opened.status}`);
  await bea.locator('#queue-results', { hasText: 'Live subject' }).waitFor(within)
    .catch(() => fail('the new ticket does not appear in the watched queue'));

  console.log(JSON.stringify({ ok: true }));
} finally {
  await browser.close();
}
