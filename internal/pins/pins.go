//go:build pins

// Package pins keeps the mandated modules in go.mod while the packages that use them are
// being written. It is never built; delete it once every module here has a real importer.
package pins

import (
	_ "github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/kardianos/service"
	_ "github.com/labstack/echo/v4"
	_ "github.com/microsoftgraph/msgraph-sdk-go"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/sys/windows"
	_ "gopkg.in/yaml.v3"
)
