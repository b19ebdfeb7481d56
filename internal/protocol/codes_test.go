package protocol_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// TestErrorCodesListsEveryCode: every Code constant of protocol.go is in
// ErrorCodes, so that metrics start every code at 0.
func TestErrorCodesListsEveryCode(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "protocol.go", nil, 0)
	require.NoError(t, err)
	var consts []string
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok && len(vs.Names) == 1 && strings.HasPrefix(vs.Names[0].Name, "Code") {
			lit := vs.Values[0].(*ast.BasicLit)
			v, err := strconv.Unquote(lit.Value)
			require.NoError(t, err)
			consts = append(consts, v)
		}
		return true
	})
	require.NotEmpty(t, consts)
	assert.ElementsMatch(t, consts, protocol.ErrorCodes)
}
