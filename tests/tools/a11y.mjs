// axe-core in Debian's chromium (headless) against the pages we serve: `make a11y` runs it
// through tests/a11y.py. Usage: node a11y.mjs <base-url> <path>...  Prints one JSON report.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import puppeteer from "puppeteer-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const [base, ...paths] = process.argv.slice(2);

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
  ],
});
const report = {};
try {
  for (const path of paths) {
    const page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(base + path, { waitUntil: "networkidle0", timeout: 60000 });
    // GraphiQL and Swagger UI render after load: wait until they have drawn their editors/operations
    await page.waitForFunction(
      () => document.querySelector(".graphiql-container .CodeMirror, .swagger-ui .opblock, main, form, body > *"),
      { timeout: 30000 },
    );
    await new Promise((resolve) => setTimeout(resolve, 1500));
    // Swagger UI: open a GET and a POST operation and the models, so their details are checked too
    const opened = await page.evaluate(() => {
      const wanted = ["#operations-tenants-listDepartments", "#operations-tenants-addDepartment", ".models"];
      let clicked = 0;
      for (const selector of wanted) {
        const control = document.querySelector(`${selector} .opblock-summary-control, ${selector} h4 button`);
        if (control) { control.click(); clicked += 1; }
      }
      return clicked;
    });
    if (opened) await new Promise((resolve) => setTimeout(resolve, 1500));
    await page.evaluate(axeSource);
    const result = await page.evaluate(async () =>
      // WCAG 2.1 A and AA, as the BITV 2.0 (EN 301 549) asks of public bodies' pages
      window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }),
    );
    report[path] = result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.length,
      targets: v.nodes.slice(0, process.env.A11Y_DETAIL ? 1000 : 3).map((n) =>
        n.target.join(" ") + (process.env.A11Y_DETAIL && n.any[0] && n.any[0].data
          ? " " + JSON.stringify(n.any[0].data) : ""),
      ),
    }));
    await page.close();
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
