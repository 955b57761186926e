package api_test

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vipd/vipd/internal/api"
	"github.com/vipd/vipd/internal/api/apitest"
	"github.com/vipd/vipd/internal/lab"
)

// Solid colours of the state cells in style.css.
var (
	masterGreen = [3]uint8{0x30, 0xc0, 0x30}
	faultRed    = [3]uint8{0xe0, 0x30, 0x30}
	backupBlue  = [3]uint8{0x50, 0x80, 0xe0}
	rsDownRed   = [3]uint8{0xff, 0x90, 0x90}
)

// chromium renders url headless and returns the DOM after the page's
// scripts ran, and a screenshot. --virtual-time-budget lets the page's
// timers and fetches run for that much virtual time before the capture.
func chromium(t *testing.T, url string) (dom string, shot image.Image) {
	t.Helper()
	dir := t.TempDir()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--hide-scrollbars", "--force-device-scale-factor=1", "--window-size=1600,1200",
		"--virtual-time-budget=3500",
	}
	run := func(profile string, args ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		a := append(append(append([]string{}, base...), "--user-data-dir="+filepath.Join(dir, profile)), args...)
		a = append(a, url)
		out, err := exec.CommandContext(ctx, "chromium", a...).Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", args, err)
		}
		return out
	}
	dom = string(run("p1", "--dump-dom"))
	png1 := filepath.Join(dir, "shot.png")
	run("p2", "--screenshot="+png1)
	f, err := os.Open(png1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	shot, err = png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return dom, shot
}

// colourBox returns how many pixels of img have colour c (within a small
// tolerance for colour management) and their bounding box.
func colourBox(img image.Image, c [3]uint8) (int, image.Rectangle) {
	n := 0
	var box image.Rectangle
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(uint8(r>>8), c[0]) && near(uint8(g>>8), c[1]) && near(uint8(bl>>8), c[2]) {
				n++
				p := image.Rect(x, y, x+1, y+1)
				if box.Empty() {
					box = p
				} else {
					box = box.Union(p)
				}
			}
		}
	}
	return n, box
}

func near(a, b uint8) bool { return a-b <= 3 || b-a <= 3 }

// TestStatusPageChromium renders the status page in headless Chromium (the
// Debian package) and checks what a person would see: instance rows in
// their state colours, the failing real server in red, and the page
// refreshing itself.
func TestStatusPageChromium(t *testing.T) {
	lab.RequireRoot(t)
	lab.RequireCommand(t, "chromium")

	src := apitest.NewSource()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.ServeWeb(ctx, ln, src, api.WebOptions{}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	url := fmt.Sprintf("http://%s/", ln.Addr())

	// A bgp block: one session up with BFD, one down; one VIP announced,
	// one held back with the policy's reason.
	src.Update(func(st *api.Status) {
		st.BGP = &api.BGP{
			RouterID: netip.MustParseAddr("198.18.1.11"), LocalAS: 65001,
			Peers: []api.BGPPeer{
				{Addr: netip.MustParseAddr("198.18.1.1"), RemoteAS: 65000, State: "ESTABLISHED", Since: apitest.T0.Add(-time.Hour), BFD: "UP", HoldTime: 3},
				{Addr: netip.MustParseAddr("198.18.1.2"), RemoteAS: 65000, State: "ACTIVE", BFD: "DOWN"},
			},
			Routes: []string{"198.18.0.100/32"},
			Decisions: []api.BGPDecision{
				{Prefix: "198.18.0.100/32", Announce: true, Reason: "serving"},
				{Prefix: "198.18.0.101/32", Announce: false, Reason: "every real server is down"},
			},
		}
	})
	before := src.StatusCalls()
	dom, shot := chromium(t, url)

	// The script ran and rendered the data, with the right classes.
	for _, re := range []string{
		`<tr class="st-MASTER" data-instance="VI_1">`,
		`<td class="st-MASTER">MASTER</td>`,
		`<tr class="st-BACKUP" data-instance="VI_2">`,
		`<tr class="st-FAULT" data-instance="VI_3">`,
		`interface eth1 down`,
		`<tr class="rs-down" data-real-server="198\.18\.0\.22:80"><td>198\.18\.0\.22:80</td><td>Route</td><td>DOWN</td>`,
		`HTTP_GET: connect: connection refused`,
		`<tr class="rs-up" data-real-server="198\.18\.0\.21:80">`,
		`TCP 198\.18\.0\.100:80 — wrr, persistent 50s`,
		`FWM 1 — sh`,
		`auth 2, ttl 1`,
		`12,345`,
		`updated \d\d:\d\d:\d\d, every second`,
		`router id 198\.18\.1\.11, AS 65001`,
		`<tr class="rs-up" data-bgp-peer="198\.18\.1\.1"><td>198\.18\.1\.1</td><td class="num">65,000</td><td>ESTABLISHED</td>`,
		`<tr class="rs-down" data-bgp-peer="198\.18\.1\.2"><td>198\.18\.1\.2</td><td class="num">65,000</td><td>ACTIVE</td>`,
		`<tr class="rs-down" data-bgp-prefix="198\.18\.0\.101/32"><td>198\.18\.0\.101/32</td><td>no</td><td class="wrap">every real server is down</td>`,
	} {
		if !regexp.MustCompile(re).MatchString(dom) {
			t.Errorf("rendered page lacks %s", re)
		}
	}
	if strings.Contains(dom, "lost contact") {
		t.Error("page says it lost contact with vipd")
	}
	// Refreshed live: more than one fetch of status.json during the
	// page's 3.5 s of virtual time (the DOM dump's browser alone).
	if n := src.StatusCalls() - before; n < 4 {
		t.Errorf("status.json fetched %d times by two page loads, want it refreshed every second", n)
	}

	greenN, greenBox := colourBox(shot, masterGreen)
	redN, redBox := colourBox(shot, faultRed)
	blueN, _ := colourBox(shot, backupBlue)
	downN, downBox := colourBox(shot, rsDownRed)
	t.Logf("pixels: MASTER %d %v, FAULT %d %v, BACKUP %d, DOWN %d %v", greenN, greenBox, redN, redBox, blueN, downN, downBox)
	if greenN < 200 || redN < 200 || blueN < 200 || downN < 2000 {
		t.Fatalf("state colours missing from the screenshot: MASTER %d, FAULT %d, BACKUP %d, DOWN %d pixels", greenN, redN, blueN, downN)
	}
	// VI_1 (MASTER) is listed above VI_3 (FAULT), both above the real
	// servers.
	if greenBox.Min.Y >= redBox.Min.Y || redBox.Min.Y >= downBox.Min.Y {
		t.Errorf("layout: MASTER at y=%d, FAULT at y=%d, DOWN real server at y=%d", greenBox.Min.Y, redBox.Min.Y, downBox.Min.Y)
	}

	// Now every instance is BACKUP and every real server up: the MASTER
	// and FAULT cells lose their colour (only the legend keeps it) and no
	// row is red. The page follows the daemon, it does not draw a picture.
	src.Update(func(st *api.Status) {
		for i := range st.Instances {
			st.Instances[i].State = "BACKUP"
		}
		for i := range st.SyncGroups {
			st.SyncGroups[i].State = "BACKUP"
		}
		for i := range st.Checks {
			st.Checks[i].Up = true
		}
	})
	dom2, shot2 := chromium(t, url)
	if strings.Contains(dom2, `data-instance="VI_1"`) && !strings.Contains(dom2, `<tr class="st-BACKUP" data-instance="VI_1">`) {
		t.Error("VI_1 not shown as BACKUP after the change")
	}
	green2, _ := colourBox(shot2, masterGreen)
	red2, _ := colourBox(shot2, faultRed)
	blue2, _ := colourBox(shot2, backupBlue)
	down2, _ := colourBox(shot2, rsDownRed)
	t.Logf("after: MASTER %d, FAULT %d, BACKUP %d, DOWN %d pixels", green2, red2, blue2, down2)
	if green2 > greenN-200 || red2 > redN-200 || blue2 < blueN+400 || down2 > downN-2000 {
		t.Errorf("screenshot did not follow the state: MASTER %d->%d, FAULT %d->%d, BACKUP %d->%d, DOWN %d->%d",
			greenN, green2, redN, red2, blueN, blue2, downN, down2)
	}
}
