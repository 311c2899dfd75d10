// Command etcdcluster runs an etcd cluster on loopback, in process, until
// it is interrupted: for the cluster demo (docs/cluster.md) and for trying
// `store etcd` by hand. It writes the client URLs, space-separated, to
// -endpoints-file (and prints them), so a script can wait for the file.
//
//	go run ./bench/cmd/etcdcluster -members 3 -dir /tmp/etcd -endpoints-file /tmp/etcd/endpoints
//
// The members listen on 127.0.0.1 only, without TLS or auth: not for
// production.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/authgate/authgate/store/etcd/embedded"
)

func main() {
	members := flag.Int("members", 3, "how many members")
	dir := flag.String("dir", "", "data directory (default: a new temporary one)")
	endpointsFile := flag.String("endpoints-file", "", "where to write the client URLs once the cluster is up")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("etcdcluster: ")
	if *dir == "" {
		d, err := os.MkdirTemp("", "authgate-etcd-")
		if err != nil {
			log.Fatal(err)
		}
		*dir = d
	}
	c, err := embedded.Start(*dir, *members)
	if err != nil {
		log.Fatal(err)
	}
	eps := strings.Join(c.Endpoints(), " ")
	if *endpointsFile != "" {
		if err := os.WriteFile(*endpointsFile, []byte(eps+"\n"), 0o644); err != nil {
			c.Close()
			log.Fatal(err)
		}
	}
	fmt.Printf("etcd cluster of %d members on %s (data in %s); Ctrl-C stops it\n", *members, eps, *dir)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
	if err := c.Close(); err != nil {
		log.Fatal(err)
	}
}
