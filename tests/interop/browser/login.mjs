// A person at a browser: opens the URL a client hands to its "web browser" (a loopback
// address that redirects to the identity provider's login page), screenshots the page,
// signs in, and waits until the identity provider has redirected back to the client's
// loopback callback. Debian's Chromium, driven headless through playwright-core.
//
//   node login.mjs URL
//
// Environment: SIGSTACK_LOGIN_USER, SIGSTACK_LOGIN_PASSWORD_FILE, SIGSTACK_SCREENSHOT
// (PNG path for the login page), CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";

const url = process.argv[2];
if (!url) {
  console.error("usage: node login.mjs URL");
  process.exit(2);
}
const user = process.env.SIGSTACK_LOGIN_USER ?? "dev";
const password = readFileSync(process.env.SIGSTACK_LOGIN_PASSWORD_FILE, "utf8").trim();
const screenshot = process.env.SIGSTACK_SCREENSHOT;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"],
});
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector("form input[name=username]", { timeout: 15000 });
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", password);
  await Promise.all([
    page.waitForURL(/\/auth\/callback/, { timeout: 15000 }),
    page.click("button[value=approve]"),
  ]);
  console.error(`signed in; redirected to ${new URL(page.url()).origin}/auth/callback`);
} catch (e) {
  console.error(`browser login failed: ${e}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
