module github.com/lance-go/lance/lance

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/VictoriaMetrics/metrics v1.45.0
	github.com/lance-go/lance/lnc-core v0.0.0
	github.com/lance-go/lance/lnc-io v0.0.0
	github.com/lance-go/lance/lnc-network v0.0.0
	go.uber.org/goleak v1.3.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/valyala/fastrand v1.1.0 // indirect
	github.com/valyala/histogram v1.2.0 // indirect
)

replace (
	github.com/lance-go/lance/lnc-core => ../lnc-core
	github.com/lance-go/lance/lnc-io => ../lnc-io
	github.com/lance-go/lance/lnc-network => ../lnc-network
)
