package gossip_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/evenkeel/evenkeel/schemasync"
)

// A service's gossip: NewCluster creates it from the cluster section (memberlist listens from then on), Run
// works until its context ends, and Leave announces the departure and waits for every goroutine. A node
// without seeds is ready at once; one with seeds once it has joined one and merged its state.
func Example() {
	cfg := schemasync.DefaultConfig()
	cfg.Cluster.NodeName = "node1"
	cfg.Cluster.Bind = "127.0.0.1:0"
	cfg.Cluster.APIAdvertise = "http://127.0.0.1:8190" // where other nodes fetch this node's observations
	cfg.Repositories = []schemasync.RepositoryConfig{{Name: "primary", Endpoints: []string{"http://127.0.0.1:1/"}}}
	svc, err := schemasync.NewService(cfg, schemasync.ServiceOptions{})
	if err != nil {
		log.Fatal(err)
	}
	c, err := svc.NewCluster(schemasync.ClusterOptions{})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	fmt.Println("ready:", c.Ready(), "members:", len(c.Members()))
	cancel()
	fmt.Println("run:", <-done)
	fmt.Println("leave:", c.Leave(time.Second), "cluster after leaving:", svc.Cluster() != nil)
	// Output:
	// ready: true members: 1
	// run: <nil>
	// leave: <nil> cluster after leaving: false
}
