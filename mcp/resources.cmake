# The texts of llm-router-mcp's resources (src/resources.c), generated at
# build time from the router's own tables so that they cannot drift:
#   gen/mcp_openapi.h, gen/mcp_routes.txt  tools/gen_mcp_openapi, linked with
#       librouter, walks rt_routes (router/src/api/routes.c)
#   gen/mcp_config.h  the router's and the node's option tables as their
#       binaries print them (--help-markdown)
# The MCP server's own table (src/options.c) is printed at run time.
set(MCP_GEN ${CMAKE_CURRENT_BINARY_DIR}/gen)
file(MAKE_DIRECTORY ${MCP_GEN})

add_executable(gen_mcp_openapi ${PROJECT_SOURCE_DIR}/tools/gen_mcp_openapi.c)
target_link_libraries(gen_mcp_openapi PRIVATE router)
add_custom_command(
  OUTPUT ${MCP_GEN}/mcp_openapi.h ${MCP_GEN}/mcp_routes.txt
  COMMAND gen_mcp_openapi ${MCP_GEN}
  DEPENDS gen_mcp_openapi
  COMMENT "Generating the MCP OpenAPI resource from the route table"
  VERBATIM)

# the header is rewritten only when the tables change (a relinked binary with
# the same options recompiles nothing); the stamp records the run
add_custom_command(
  OUTPUT ${MCP_GEN}/mcp_config.stamp
  BYPRODUCTS ${MCP_GEN}/mcp_config.h
  COMMAND ${CMAKE_COMMAND} -DROUTER=$<TARGET_FILE:llm-router> -DNODE=$<TARGET_FILE:llm-node>
          -DOUT=${MCP_GEN}/mcp_config.h -P ${PROJECT_SOURCE_DIR}/tools/gen_mcp_config.cmake
  COMMAND ${CMAKE_COMMAND} -E touch ${MCP_GEN}/mcp_config.stamp
  DEPENDS llm-router llm-node ${PROJECT_SOURCE_DIR}/tools/gen_mcp_config.cmake
  COMMENT "Generating the MCP configuration resource from the option tables"
  VERBATIM)

target_sources(mcp PRIVATE ${MCP_GEN}/mcp_openapi.h ${MCP_GEN}/mcp_routes.txt ${MCP_GEN}/mcp_config.stamp)
