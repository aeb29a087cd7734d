package main

import (
	"github.com/whirl-dev/whirl/internal/browser"
	"github.com/whirl-dev/whirl/internal/service"
)

// videoFiles serves the finished videos of srv's cache tiers over HTTP.
type videoFiles struct{ srv *service.Server }

func (v videoFiles) OpenVideo(id string) (browser.Video, bool) {
	f, facts, ok := v.srv.FinishedVideo(id)
	if !ok {
		return browser.Video{}, false
	}
	return browser.Video{File: f.File, SHA256: f.SHA256, Facts: facts}, true
}
