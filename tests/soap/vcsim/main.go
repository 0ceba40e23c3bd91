// vcsim: govmomi's simulator (a VPX model) on 127.0.0.1:18989, plain HTTP,
// for scripts/vcsim-compare.sh. Debian's golang-github-vmware-govmomi-dev
// ships the simulator package but no vcsim main; this is one.
package main

import (
	"fmt"
	"net/url"
	"os"
	"os/signal"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	model := simulator.VPX()
	if err := model.Create(); err != nil {
		panic(err)
	}
	model.Service.Listen = &url.URL{Host: "127.0.0.1:18989"}
	s := model.Service.NewServer()
	fmt.Println(s.URL)
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt)
	<-c
}
