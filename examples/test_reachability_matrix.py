"""Who reaches whom, in one probe per source."""


def test_three_tier_reachability(dockernet):
    front = dockernet.network("front")
    back = dockernet.network("back")
    web = dockernet.container("web", networks=[front])
    api = dockernet.container("api", networks=[front, back])
    db = dockernet.container("db", networks=[back])

    matrix = dockernet.reachability([web, api, db], [web, api, db])
    print(matrix)
    # reachability (ICMP):
    #   from \ to  web  api  db
    #   web        -    yes  no
    #   api        yes  -    yes
    #   db         no   yes  -

    assert matrix[web, api] and matrix[api, db]
    assert not matrix[web, db] and not matrix[db, web]
    assert sorted(matrix.unreachable()) == [("db", "web"), ("web", "db")]
