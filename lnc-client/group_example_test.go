package lance_test

import (
	"context"
	"fmt"
	"log"
	"os/signal"
	"syscall"
	"time"

	lance "github.com/lance-go/lance/lnc-client"
)

func ExampleNewGroupConsumer() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	client, err := lance.Dial(ctx, exampleAddr)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	// Every replica of the service runs the same code; the members find
	// each other through the headless service's DNS name.
	group, err := lance.NewGroupConsumer(client, "billing", []string{"orders", "refunds", "invoices"},
		lance.WithGroupDNS("billing-gossip.default.svc.cluster.local", 7946),
		lance.WithOnAssigned(func(ctx context.Context, topic string, from lance.Offset) {
			log.Printf("reading %s from %d", topic, from)
		}),
		lance.WithOnRevoked(func(ctx context.Context, topic string, at lance.Offset) error {
			log.Printf("handing %s over at %d", topic, at)
			return nil
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		// Hand the topics over, committed, before the process exits.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := group.Close(ctx); err != nil {
			log.Print(err)
		}
	}()
	n := 0
	for rec, err := range group.Records(ctx) {
		if err != nil {
			log.Print(err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		fmt.Printf("%s %d: %s\n", rec.Topic, rec.Offset, rec.Value)
		if n++; n%1000 == 0 {
			if err := group.Commit(ctx); err != nil {
				log.Print(err)
			}
		}
	}
}
