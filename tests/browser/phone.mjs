// Shared by the browser scripts: which pages scroll sideways on a 360 px phone.
//
// Visits each URL at 360 px (every folded part opened), and returns one line
// per page wider than the screen, naming what sticks out; the viewport is
// put back to 1280 px afterwards.
export async function pagesWiderThanAPhone(page, urls) {
  await page.setViewportSize({ width: 360, height: 780 });
  const wide = [];
  for (const url of urls) {
    await page.goto(url);
    await page.evaluate(() => document.querySelectorAll('details').forEach((d) => { d.open = true; }));
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    if (width > 360) {
      const culprits = await page.evaluate(() => [...document.querySelectorAll('main *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
        .slice(0, 3).map((e) => `${e.tagName.toLowerCase()}.${e.className}`));
      wide.push(`${new URL(url).pathname} ${width}px (${culprits.join(' ')})`);
    }
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  return wide;
}
