package e2e

import (
	"context"
	"image/png"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/lab"
)

// historyConf: a lone BACKUP, so it becomes MASTER when no advert comes
// (a real transition with a cause), over two real servers.
var historyConf = natConf{instance: "VI_H", routerID: "history", vrid: 72, advert: "1", rs2Weight: 1, vrrpV2: true}

// artefactDir is where browser tests keep their screenshots: $VIPD_ARTEFACTS,
// else a directory under the system's temporary directory that outlives
// the test (its path is logged).
func artefactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("VIPD_ARTEFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "vipd-artefacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStatusHistoryChromium loads the status page of a running vipd in
// headless Chromium after a real VRRP transition (BACKUP to MASTER on
// advert timeout) and a real server whose check fails (its nginx
// stopped): the instance's timeline lists the transition with its cause
// and draws both states, the failing real server's check band has a DOWN
// segment after an UP one, the rate graphs exist; the screenshot has the
// check band's red and is kept as the test's artefact.
func TestStatusHistoryChromium(t *testing.T) {
	t.Parallel()
	lab.RequireRoot(t)
	lab.RequireCommand(t, "chromium")
	l := lab.New(t)
	client := l.Host("client")
	h1 := l.Host("d1")
	rs1 := l.Host("rs1")
	rs2 := l.Host("rs2")
	nginx(t, rs1, "rs1")
	ng2 := nginx(t, rs2, "rs2")
	r1, r2 := rs1.Addr.String(), rs2.Addr.String()
	m := net.JoinHostPort(h1.Addr.String(), "9650")
	d := startVipd(t, h1, historyConf.render("BACKUP", 100, r1, r2), "--metrics", m)
	lab.Eventually(t, 10*time.Second, func() bool { return d.state("VI_H") == "MASTER" }, "VI_H never MASTER")
	checkUp := func(rs string) (up, found bool) {
		for _, c := range d.status().Checks {
			if c.RealServer == rs+":80" {
				return c.Up, true
			}
		}
		return false, false
	}
	lab.Eventually(t, 10*time.Second, func() bool { up, ok := checkUp(r2); return ok && up }, "rs2's check never passed")
	gets(t, client, "198.18.0.100", 10)
	// A few samples with rs2 up, then its nginx stops.
	upSince := time.Now()
	lab.Eventually(t, 10*time.Second, func() bool { return time.Since(upSince) > 2*time.Second }, "")
	stop(t, ng2)
	lab.Eventually(t, 10*time.Second, func() bool { up, ok := checkUp(r2); return ok && !up }, "rs2's check never failed")
	downSince := time.Now()
	// The page samples every second: let two samples see it down.
	lab.Eventually(t, 10*time.Second, func() bool { return time.Since(downSince) > 2*time.Second }, "")

	url := "http://" + m + "/"
	dom := chromiumDOM(t, client, url)
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`data-instance-timeline="VI_H"`),
		regexp.MustCompile(`<li data-transition="BACKUP&gt;MASTER">[0-9:]+ BACKUP → MASTER: advert timeout`),
		regexp.MustCompile(`data-state="BACKUP"`),
		regexp.MustCompile(`data-state="MASTER"`),
		regexp.MustCompile(`data-graph="TCP 198\.18\.0\.100:80"`),
		regexp.MustCompile(`data-graph="TCP 198\.18\.0\.100:80\|` + regexp.QuoteMeta(r1) + `:80"`),
		regexp.MustCompile(`data-check-band="TCP 198\.18\.0\.100:80\|` + regexp.QuoteMeta(r2) + `:80".*?data-check="up".*?data-check="down"`),
		regexp.MustCompile(`<polyline points="[0-9., ]+" class="cps">`),
		regexp.MustCompile(`data-check-latency="TCP 198\.18\.0\.100:80\|` + regexp.QuoteMeta(r1) + `:80".*?<polyline points="[0-9., ]+" class="lat">`),
	} {
		if !want.MatchString(dom) {
			t.Errorf("the live page lacks %s", want)
		}
	}
	if t.Failed() {
		i := strings.Index(dom, `id="timelines"`)
		t.Logf("history section of the DOM:\n%.6000s", dom[max(0, i):])
	}

	// Screenshot, kept.
	shot := filepath.Join(artefactDir(t), "TestStatusHistoryChromium.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", client.NS, "chromium",
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--hide-scrollbars", "--force-device-scale-factor=1", "--window-size=1400,1000",
		"--user-data-dir="+filepath.Join(t.TempDir(), "profile"), "--virtual-time-budget=3000",
		"--screenshot="+shot, url).CombinedOutput()
	if err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	t.Logf("screenshot: %s", shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// The check band's DOWN red (#e03030) and the timeline's MASTER green
	// (#30c030): no FAULT instance here, so the red is the band.
	red, green := 0, 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			c := [3]int{int(r >> 8), int(g >> 8), int(bl >> 8)}
			switch {
			case near3(c, [3]int{0xe0, 0x30, 0x30}):
				red++
			case near3(c, [3]int{0x30, 0xc0, 0x30}):
				green++
			}
		}
	}
	if red < 8 || green < 50 {
		t.Errorf("screenshot %s: %d red and %d green pixels, want the DOWN band and the MASTER colour", shot, red, green)
	}
}

func near3(a, b [3]int) bool {
	for i := range a {
		if d := a[i] - b[i]; d > 3 || d < -3 {
			return false
		}
	}
	return true
}
