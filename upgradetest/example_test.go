package upgradetest_test

import (
	"context"
	"fmt"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/harness/nginx"
	"github.com/releng-tools/nginx-upgrade-harness/scenarios"
	"github.com/releng-tools/nginx-upgrade-harness/upgradetest"
)

// A user's spec for their own build, as README.md shows it (a test holds
// the two to the same text; TestMyBuild runs it).

// my build: begin
var _ = Describe("my nginx build", Ordered, func() {
	var pair *upgradetest.Pair
	BeforeAll(func(ctx SpecContext) {
		engine, err := upgradetest.NewEngine(ctx, upgradetest.Log(GinkgoWriter.Printf))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(engine.Close)
		pair, err = engine.Pair(ctx, "debian:bookworm", "binary:"+os.Getenv("NGINX_BINARY"))
		Expect(err).NotTo(HaveOccurred())
	}, NodeTimeout(15*time.Minute))

	It("upgrades under load without losing a connection", func(ctx SpecContext) {
		r, err := pair.Run(ctx, "upgrade")
		Expect(err).NotTo(HaveOccurred())
		Expect(r).To(upgradetest.PassVerdict())
		Expect(r).To(upgradetest.DropNothing())
	}, SpecTimeout(15*time.Minute))
})

// my build: end

// The default pair's upgrade, judged: Debian bookworm's nginx to
// bookworm-security's under the default load. It needs a Docker engine;
// warm (images cached), 19 s here.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	engine, err := upgradetest.NewEngine(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer engine.Close()
	pair, err := engine.Pair(ctx, "debian:bookworm", "debian:bookworm-security")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(pair.Dir())
	r, err := pair.Run(ctx, "upgrade")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Scenario.Verdict, r.Scenario.Reasons)
	// Output: pass []
}

// A scenario of your own steps: USR2, then QUIT to the old master without
// WINCH first (its workers drain on QUIT). The judge reads its record as
// it reads a catalogue scenario's. (Compiled, not run: it needs an engine.)
func ExamplePair_RunScenario() {
	ctx := context.Background()
	engine, err := upgradetest.NewEngine(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer engine.Close()
	pair, err := engine.Pair(ctx, "debian:bookworm", "debian:bookworm-security")
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := pair.RunScenario(ctx, scenarios.Scenario{
		Name: "upgrade-without-winch", Kind: "graceful", Expect: scenarios.ExpectZeroDrops,
		Moves: []scenarios.Move{
			{Step: nginx.InstallBinary("install-new-binary", harness.NewBinaryStage)},
			{Step: nginx.SpawnNewMaster(), Audit: 2 * time.Second},
			{Step: nginx.QuitOldMaster(90 * time.Second), Audit: 2 * time.Second},
		},
		Final: scenarios.Final{Binary: "new"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Scenario.Verdict, r.Scenario.Reasons)
}
