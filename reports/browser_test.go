package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/reports/record"
	"github.com/releng-tools/nginx-upgrade-harness/reports/render"
)

// probe runs in the page as Chromium lays it out at 800 px wide, and writes
// what a person would see into the DOM for --dump-dom: resources loaded,
// the plot's size and drawn lines, and the smallest text on screen — SVG
// text measured after the SVG's scaling, so a plot shrunk to fit shows up.
const probe = `<script>
(function () {
  const out = {resources: performance.getEntriesByType('resource').map(e => e.name)};
  const svg = document.querySelector('svg.plot');
  out.svgWidth = svg ? svg.getBoundingClientRect().width : 0;
  out.drawnPaths = [...document.querySelectorAll('svg.plot path')].filter(p => p.getBBox().width > 50).length;
  out.points = document.querySelectorAll('svg.plot circle.pt').length;
  let minSvg = 1e9, minHtml = 1e9;
  for (const t of document.querySelectorAll('svg.plot text')) {
    if (!t.textContent.trim()) continue;
    const m = t.getScreenCTM();
    const px = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
    minSvg = Math.min(minSvg, px);
  }
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || el.closest('svg') || el.closest('script') || el.closest('title')) continue;
    minHtml = Math.min(minHtml, parseFloat(getComputedStyle(el).fontSize));
  }
  out.minSvgTextPx = minSvg; out.minHtmlTextPx = minHtml;
  out.pageWidth = document.documentElement.scrollWidth;
  document.body.setAttribute('data-probe', JSON.stringify(out));
})();
</script>`

// chromium finds Debian's chromium; the test fails (never skips) without it:
// make deps installs it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: run `make deps` (installs Debian's chromium package) — this test renders report.html as a person sees it")
	return ""
}

func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
		"--no-first-run", "--user-data-dir=" + t.TempDir(), "--window-size=800,1600"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// report.html as a person opens it, in headless Chromium at 800 px: nothing
// loaded from elsewhere, the plot drawn (lines, loss points, pixels of the
// p99 colour on screen), no text below 11 px, no sideways scrolling.
func TestReportHTMLInChromium(t *testing.T) {
	bin := chromium(t)
	runDir := t.TempDir()
	f := upgradeFixture()
	f.results = append(f.results, failedWith(2500, 0, "EOF"), failedWith(2600, 0, "read: connection reset by peer"))
	writeFixture(t, runDir, "upgrade", f)
	r, err := BuildRun(runDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := render.WriteAll(runDir, r); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(runDir, record.ReportHTML))
	if err != nil {
		t.Fatal(err)
	}
	// Statically: no URL a browser would fetch (the SVG namespace is a name).
	static := strings.ReplaceAll(string(page), `xmlns="http://www.w3.org/2000/svg"`, "")
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*"?(https?:)?//|url\(|@import|<link|<script`).FindString(static); m != "" {
		t.Errorf("report.html refers to something outside itself: %q", m)
	}
	probed := filepath.Join(runDir, "probed.html")
	if err := os.WriteFile(probed, []byte(strings.Replace(string(page), "</body>", probe+"</body>", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := string(runChromium(t, bin, "--virtual-time-budget=3000", "--dump-dom", "file://"+probed))
	m := regexp.MustCompile(`data-probe="([^"]*)"`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("the probe did not run; dumped DOM starts %q", dom[:min(len(dom), 300)])
	}
	var got struct {
		Resources     []string
		SvgWidth      float64
		DrawnPaths    int
		Points        int
		MinSvgTextPx  float64
		MinHtmlTextPx float64
		PageWidth     float64
	}
	if err := json.Unmarshal([]byte(html.UnescapeString(m[1])), &got); err != nil {
		t.Fatalf("probe result %q: %v", m[1], err)
	}
	t.Logf("probe at 800 px: %+v", got)
	if len(got.Resources) > 0 {
		t.Errorf("the page loaded %v: it must be self-contained", got.Resources)
	}
	if got.SvgWidth < 700 {
		t.Errorf("plot %.0f px wide at an 800 px window, want it to use the page's width", got.SvgWidth)
	}
	if got.DrawnPaths < 4 {
		t.Errorf("%d lines drawn across the plot, want p50, p99, max and requests", got.DrawnPaths)
	}
	if got.Points < 2 {
		t.Errorf("%d loss points, want one per failed request (2)", got.Points)
	}
	if got.MinSvgTextPx < 11 {
		t.Errorf("smallest text in the plot is %.1f px on screen, want ≥ 11", got.MinSvgTextPx)
	}
	if got.MinHtmlTextPx < 11 {
		t.Errorf("smallest text on the page is %.1f px, want ≥ 11", got.MinHtmlTextPx)
	}
	if got.PageWidth > 800 {
		t.Errorf("page is %.0f px wide at 800: it scrolls sideways", got.PageWidth)
	}

	// On screen: pixels of the p99 line's colour (#1f5fbf) are there.
	shot := filepath.Join(runDir, "shot.png")
	runChromium(t, bin, "--screenshot="+shot, "file://"+filepath.Join(runDir, record.ReportHTML))
	fh, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	blue := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near8(r, 0x1f) && near8(g, 0x5f) && near8(bl, 0xbf) {
				blue++
			}
		}
	}
	if blue < 50 {
		t.Errorf("%d pixels of the p99 colour in the screenshot: the plot is not drawn", blue)
	}
}

func near8(v uint32, want int) bool { d := int(v>>8) - want; return d > -24 && d < 24 }
