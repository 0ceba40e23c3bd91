"""The pyVmomi cases of test_pyvmomi.py, run against govmomi's simulator
(vcsim) for comparison, printing what it does in each; not a test (vcsim
implements no TaskManager.CreateTask, so most task cases cannot pass there).
scripts/vcsim-compare.sh builds vcsim from Debian's packages and runs this."""
import threading, time, urllib.request, urllib.error
from pyVim.connect import SmartConnect, Disconnect
from pyVim.task import WaitForTask
from pyVmomi import vim, vmodl, SoapStubAdapter

def connect(user="user", pwd="pass"):
    return SmartConnect(protocol="http", host="127.0.0.1", port=18989, user=user, pwd=pwd)

def case(name, f):
    try:
        print(f"{name}: {f()}")
    except Exception as e:
        print(f"{name}: raised {type(e).__name__}: {getattr(e, 'msg', e)!s:.150}")

si = connect()
case("login wrong password", lambda: connect(pwd="wrong") and "logged in")
case("login unknown user", lambda: connect(user="nobody", pwd="x") and "logged in")
case("currentSession", lambda: si.content.sessionManager.currentSession.userName)
case("about", lambda: (si.content.about.apiVersion, si.content.about.apiType))
def create():
    return si.content.taskManager.CreateTask(obj=si.content.rootFolder, taskTypeId="com.example.backup", initiatedBy="user", cancelable=True)
case("CreateTask", lambda: create().key)
case("recentTask", lambda: len(si.content.taskManager.recentTask))
def no_session():
    stub = SoapStubAdapter(url="http://127.0.0.1:18989/sdk", version="vim.version.v8_0_3_0")
    stub.cookie = 'vmware_soap_session="garbage"'
    return vim.ServiceInstance("ServiceInstance", stub).content.taskManager.recentTask
case("garbage cookie, recentTask", no_session)
case("unknown task info", lambda: vim.Task("task-999999", si._stub).info)
case("CreateCollectorForTasks", lambda: si.content.taskManager.CreateCollectorForTasks(vim.TaskFilterSpec(activationId=["x"]))._moId)
case("CreateCollectorForTasks recursion all", lambda: si.content.taskManager.CreateCollectorForTasks(vim.TaskFilterSpec(entity=vim.TaskFilterSpec.ByEntity(entity=si.content.rootFolder, recursion="all")))._moId)
# a real vcsim task: PowerOff a VM and WaitForTask
def power_task(vm):
    """A task of vcsim's own: toggles the VM's power."""
    on = vm.runtime.powerState == "poweredOn"
    return vm.PowerOffVM_Task() if on else vm.PowerOnVM_Task()


def vm_task():
    vm = si.content.searchIndex.FindByInventoryPath("DC0/vm/DC0_H0_VM0")
    t = power_task(vm)
    return (WaitForTask(t), t.info.state, t.info.progress)
case("WaitForTask on a vcsim task", vm_task)
def cancel_done():
    vm = si.content.searchIndex.FindByInventoryPath("DC0/vm/DC0_H0_VM1")
    t = power_task(vm); WaitForTask(t)
    return t.CancelTask()
case("CancelTask of a finished task", cancel_done)
def set_state_done():
    vm = si.content.searchIndex.FindByInventoryPath("DC0/vm/DC0_H0_VM0")
    t = power_task(vm); WaitForTask(t)
    return t.SetTaskState("running")
case("SetTaskState running on a finished task", set_state_done)
def progress_oob():
    vm = si.content.searchIndex.FindByInventoryPath("DC0/vm/DC0_H0_VM0")
    t = power_task(vm); WaitForTask(t)
    return t.UpdateProgress(150)
case("UpdateProgress 150 on a finished task", progress_oob)
def post(body):
    req = urllib.request.Request("http://127.0.0.1:18989/sdk", data=body.encode(), headers={"Content-Type": "text/xml", "SOAPAction": "urn:vim25/8.0.3.0", "Cookie": si._stub.cookie})
    try:
        with urllib.request.urlopen(req) as r: return (r.status, r.read().decode()[:200])
    except urllib.error.HTTPError as e:
        import re
        t = e.read().decode()
        return (e.code, re.findall(r"<faultstring>(.*?)</faultstring>", t, re.S)[:1], re.findall(r"<detail><(\w+)", t)[:1])
env = '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>{}</soapenv:Body></soapenv:Envelope>'
case("malformed XML", lambda: post("<soapenv:Envelope"))
case("unknown method", lambda: post(env.format('<DestroyDatacenter xmlns="urn:vim25"><_this type="Folder">group-d1</_this></DestroyDatacenter>')))
case("method on wrong type", lambda: post(env.format('<CancelTask xmlns="urn:vim25"><_this type="Folder">group-d1</_this></CancelTask>')))
case("oversized body", lambda: post("<a>" * 400000))
Disconnect(si)
case("after Logout, recentTask", lambda: si.content.taskManager.recentTask)
