# The instances were five resources, one per role, until they became two
# (instances.tf): these moves keep every existing host where it is in the
# state, so the change replaces none. The counted ones are listed up to
# the largest replica_count and app_count (20, variables.tf).

moved {
  from = aws_instance.db["db1"]
  to   = aws_instance.stateful["db1"]
}

moved {
  from = aws_instance.db["db2"]
  to   = aws_instance.stateful["db2"]
}

moved {
  from = aws_instance.witness
  to   = aws_instance.stateful["witness"]
}

moved {
  from = aws_instance.replica[0]
  to   = aws_instance.stateful["replica1"]
}

moved {
  from = aws_instance.replica[1]
  to   = aws_instance.stateful["replica2"]
}

moved {
  from = aws_instance.replica[2]
  to   = aws_instance.stateful["replica3"]
}

moved {
  from = aws_instance.replica[3]
  to   = aws_instance.stateful["replica4"]
}

moved {
  from = aws_instance.replica[4]
  to   = aws_instance.stateful["replica5"]
}

moved {
  from = aws_instance.replica[5]
  to   = aws_instance.stateful["replica6"]
}

moved {
  from = aws_instance.replica[6]
  to   = aws_instance.stateful["replica7"]
}

moved {
  from = aws_instance.replica[7]
  to   = aws_instance.stateful["replica8"]
}

moved {
  from = aws_instance.replica[8]
  to   = aws_instance.stateful["replica9"]
}

moved {
  from = aws_instance.replica[9]
  to   = aws_instance.stateful["replica10"]
}

moved {
  from = aws_instance.replica[10]
  to   = aws_instance.stateful["replica11"]
}

moved {
  from = aws_instance.replica[11]
  to   = aws_instance.stateful["replica12"]
}

moved {
  from = aws_instance.replica[12]
  to   = aws_instance.stateful["replica13"]
}

moved {
  from = aws_instance.replica[13]
  to   = aws_instance.stateful["replica14"]
}

moved {
  from = aws_instance.replica[14]
  to   = aws_instance.stateful["replica15"]
}

moved {
  from = aws_instance.replica[15]
  to   = aws_instance.stateful["replica16"]
}

moved {
  from = aws_instance.replica[16]
  to   = aws_instance.stateful["replica17"]
}

moved {
  from = aws_instance.replica[17]
  to   = aws_instance.stateful["replica18"]
}

moved {
  from = aws_instance.replica[18]
  to   = aws_instance.stateful["replica19"]
}

moved {
  from = aws_instance.replica[19]
  to   = aws_instance.stateful["replica20"]
}

moved {
  from = aws_instance.app[0]
  to   = aws_instance.stateless["app1"]
}

moved {
  from = aws_instance.app[1]
  to   = aws_instance.stateless["app2"]
}

moved {
  from = aws_instance.app[2]
  to   = aws_instance.stateless["app3"]
}

moved {
  from = aws_instance.app[3]
  to   = aws_instance.stateless["app4"]
}

moved {
  from = aws_instance.app[4]
  to   = aws_instance.stateless["app5"]
}

moved {
  from = aws_instance.app[5]
  to   = aws_instance.stateless["app6"]
}

moved {
  from = aws_instance.app[6]
  to   = aws_instance.stateless["app7"]
}

moved {
  from = aws_instance.app[7]
  to   = aws_instance.stateless["app8"]
}

moved {
  from = aws_instance.app[8]
  to   = aws_instance.stateless["app9"]
}

moved {
  from = aws_instance.app[9]
  to   = aws_instance.stateless["app10"]
}

moved {
  from = aws_instance.app[10]
  to   = aws_instance.stateless["app11"]
}

moved {
  from = aws_instance.app[11]
  to   = aws_instance.stateless["app12"]
}

moved {
  from = aws_instance.app[12]
  to   = aws_instance.stateless["app13"]
}

moved {
  from = aws_instance.app[13]
  to   = aws_instance.stateless["app14"]
}

moved {
  from = aws_instance.app[14]
  to   = aws_instance.stateless["app15"]
}

moved {
  from = aws_instance.app[15]
  to   = aws_instance.stateless["app16"]
}

moved {
  from = aws_instance.app[16]
  to   = aws_instance.stateless["app17"]
}

moved {
  from = aws_instance.app[17]
  to   = aws_instance.stateless["app18"]
}

moved {
  from = aws_instance.app[18]
  to   = aws_instance.stateless["app19"]
}

moved {
  from = aws_instance.app[19]
  to   = aws_instance.stateless["app20"]
}

moved {
  from = aws_instance.lb
  to   = aws_instance.stateless["lb"]
}
