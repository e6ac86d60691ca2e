// A person using the log explorer in Debian's Chromium (headless, through playwright-core):
// searches by e-mail, opens an entry and sees its proof verified, visits a log's page, the
// TUF page and the alerts, signs in with the stack's identity provider, sees the entries
// made in their name and subscribes to e-mail alerts. Each page is screenshotted (also at
// a phone's width) and checked with axe-core; the run fails on any serious or critical
// accessibility violation, and prints a JSON summary on stdout.
//
//   node explorer.mjs BASE_URL
//
// Environment: SIGSTACK_LOGIN_USER, SIGSTACK_LOGIN_PASSWORD_FILE, SIGSTACK_SEARCH (what to
// search for), SIGSTACK_SCREENSHOTS (directory), CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const axePath = require.resolve("axe-core/axe.min.js");
const base = process.argv[2];
if (!base) {
  console.error("usage: node explorer.mjs BASE_URL");
  process.exit(2);
}
const user = process.env.SIGSTACK_LOGIN_USER ?? "dev";
const password = readFileSync(process.env.SIGSTACK_LOGIN_PASSWORD_FILE, "utf8").trim();
const search = process.env.SIGSTACK_SEARCH ?? "dev@sigstack.test";
const shots = process.env.SIGSTACK_SCREENSHOTS ?? "explorer-screenshots";
mkdirSync(shots, { recursive: true });

const summary = { pages: [], violations: [] };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
});

function expect(cond, what) {
  if (!cond) throw new Error(`expected: ${what}`);
}

// axe-core is injected from node_modules: the pages themselves load no script (their
// Content-Security-Policy forbids it, so the context bypasses CSP for the audit alone)
async function audit(page, name) {
  await page.screenshot({ path: `${shots}/explorer-${name}.png`, fullPage: true });
  await page.addScriptTag({ path: axePath });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length }));
  });
  summary.pages.push({ name, url: page.url(), title: await page.title(), violations: result.length });
  for (const v of result) summary.violations.push({ page: name, ...v });
}

try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 }, bypassCSP: true });
  const page = await context.newPage();

  await page.goto(base + "/", { waitUntil: "load" });
  expect((await page.title()).includes("sigstack log explorer"), "the home page's title");
  // keyboard first: the first Tab reaches the skip link
  await page.keyboard.press("Tab");
  expect(await page.evaluate(() => document.activeElement?.className === "skip"), "Tab focuses the skip link");
  await audit(page, "home");

  await page.fill("#q", search);
  await Promise.all([page.waitForURL(/\/search\?q=/), page.click("form[role=search] button")]);
  const status = await page.textContent("[role=status]");
  expect(/^[1-9]\d* entr/.test(status), `results for ${search} (got "${status}")`);
  await audit(page, "search");

  await Promise.all([page.waitForURL(/\/entry\//), page.click("table tbody tr a")]);
  const verdict = await page.textContent("main p");
  expect(verdict.includes("Included in the log"), `the entry's proof verified (got "${verdict}")`);
  expect((await page.textContent("main")).includes(search), "the entry page names the identity");
  await audit(page, "entry");
  const entryUrl = page.url();

  const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, bypassCSP: true });
  const small = await phone.newPage();
  await small.goto(entryUrl, { waitUntil: "load" });
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 1, `the entry page fits a phone's width (overflows by ${overflow}px)`);
  await audit(small, "entry-phone");
  await phone.close();

  await page.goto(base + "/logs", { waitUntil: "load" });
  await audit(page, "logs");
  await Promise.all([page.waitForURL(/\/log\/[^/]+$/), page.click("table tbody tr a")]);
  expect((await page.textContent("main")).includes("Checkpoint history"), "a log's page");
  await audit(page, "log");

  await page.goto(base + "/tuf", { waitUntil: "load" });
  expect((await page.textContent("main")).includes("timestamp"), "the TUF roles");
  await audit(page, "tuf");

  await page.goto(base + "/alerts", { waitUntil: "load" });
  await audit(page, "alerts");

  // sign in with the stack's identity provider
  await Promise.all([page.waitForSelector("form input[name=username]"), page.click("a[href='/login']")]);
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", password);
  await Promise.all([page.waitForURL(/\/me$/, { timeout: 15000 }), page.click("button[value=approve]")]);
  const me = await page.textContent("main");
  expect(me.includes("You are signed in as"), "the signed-in page");
  expect((await page.locator("table tbody tr").count()) > 0, "entries in the person's name");
  await audit(page, "me");
  await Promise.all([page.waitForURL(/\/me$/), page.click("form[action='/me/subscription'] button")]);
  expect((await page.textContent("main")).includes("You get an e-mail for each new entry"), "subscribed to e-mail alerts");
  await audit(page, "me-subscribed");
} catch (e) {
  summary.error = String(e);
  process.exitCode = 1;
} finally {
  await browser.close();
}
const serious = summary.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
if (serious.length > 0) process.exitCode = 1;
console.log(JSON.stringify(summary));
