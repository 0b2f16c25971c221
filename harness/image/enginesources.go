package image

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
)

// ErrNoArchive is the error of a run that names no Debian archive where
// the tool looks for one without an engine: --archive, NUH_ARCHIVE and the
// host's apt sources. UseEngineSources then asks the engine.
var ErrNoArchive = errors.New("no Debian archive named")

// engineSources are the apt sources read from Debian's own debian:RELEASE
// image on the engine: the third place the archive is taken from, after
// --archive (or NUH_ARCHIVE) and a Debian host's apt sources.
var engineSources struct {
	sync.Mutex
	files []sourceFile
	from  string // the image they were read from
}

// pullTimeout bounds pulling debian:RELEASE when the engine lacks it.
const pullTimeout = 2 * time.Minute

// UseEngineSources takes the archive from the apt sources inside
// debian:RELEASE on pool's engine — pulled when the engine lacks it and
// can — for a run that names none otherwise (CheckArchive says
// ErrNoArchive). It fails in one line naming all three places.
func UseEngineSources(ctx context.Context, pool *dockertest.Pool) error {
	return useSourcesOf(ctx, pool, "debian:"+suite, true)
}

// useSourcesOf reads the Debian apt sources of image ref (pulling it first
// when pull and the engine lacks it).
func useSourcesOf(ctx context.Context, pool *dockertest.Pool, ref string, pull bool) error {
	fail := func(why string) error {
		return fmt.Errorf("%w: pass --archive URI (or set %s), the URI of a Debian mirror's main archive (http://HOST/debian); this host has no Debian %s apt sources, and %s",
			ErrNoArchive, ArchiveEnv, suite, why)
	}
	if !imagePresent(pool, ref) {
		if !pull {
			return fail("the engine has no " + ref + " to read them from")
		}
		repo, tag, _ := strings.Cut(ref, ":")
		pctx, cancel := context.WithTimeout(ctx, pullTimeout)
		err := pool.Client.PullImage(dc.PullImageOptions{Repository: repo, Tag: tag, Context: pctx}, dc.AuthConfiguration{})
		cancel()
		if err != nil {
			return fail(fmt.Sprintf("the engine has no %s to read them from and could not pull it (%s)", ref, harness.OneLine(err.Error())))
		}
	}
	box, err := createBox(ctx, pool, ref, false)
	if err != nil {
		return fail(err.Error())
	}
	defer box.remove()
	var stanzas, lines []string
	// Paths inside the image, read through the engine: never this host's.
	for _, p := range []string{"/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"} {
		data, _, err := box.readFile(ctx, p)
		if err != nil {
			continue // an image has one or the other
		}
		if strings.HasSuffix(p, ".sources") {
			stanzas = append(stanzas, debianStanzas(string(data))...)
		} else {
			lines = append(lines, debianListLines(string(data))...)
		}
	}
	files := debianSourceFiles(lines, stanzas)
	if len(files) == 0 {
		return fail(ref + " holds no Debian " + suite + " apt sources")
	}
	engineSources.Lock()
	engineSources.files, engineSources.from = files, ref
	engineSources.Unlock()
	return nil
}

// sourcesFromEngine are the sources UseEngineSources read (nil: none).
func sourcesFromEngine() ([]sourceFile, string) {
	engineSources.Lock()
	defer engineSources.Unlock()
	return engineSources.files, engineSources.from
}

// Release is the Debian release the images are made of (bookworm).
const Release = suite
